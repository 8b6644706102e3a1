from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.money import format_usdc
from common.times import format_market_time
from rounds.exceptions import RoundNotOpen
from rounds.models import Round
from rounds.selectors import round_get
from rounds.services import round_lock


class Command(BaseCommand):
    help = "Lock round --code (OPEN -> LOCKED): no more bets. On a locked (or settled) round it says so and exits 0."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")
        parser.add_argument("--reason", default="locked from the command line", help="recorded in the audit log")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        with command_errors():
            try:
                round_ = round_lock(
                    code=options["code"],
                    reason=options["reason"],
                    acting_user=actor_from_options(options),
                    source="cli",
                )
            except RoundNotOpen:
                # A second lock (the manual's step 5 after the beat already locked) asks for what is recorded.
                round_ = round_get(code=options["code"])
                if round_.status == Round.Status.LOCKED:
                    sentence = f"Round {round_.code} is already LOCKED at {format_market_time(round_.locked_at)}"
                elif round_.status == Round.Status.SETTLED:
                    sentence = (
                        f"Round {round_.code} is already SETTLED ({round_.result}) at "
                        f"{format_market_time(round_.settled_at)}, so it takes no bets"
                    )
                else:
                    raise
                self.stdout.write(self.style.SUCCESS(f"{sentence}; nothing changed."))
                return
        self.stdout.write(
            self.style.SUCCESS(
                f"🔒 Round {round_.code} LOCKED at {format_market_time(round_.locked_at)}: "
                f"UP pool {format_usdc(round_.up_pool_u, exact=True)}, "
                f"DOWN pool {format_usdc(round_.down_pool_u, exact=True)}"
            )
        )
