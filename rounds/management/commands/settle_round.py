from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.money import format_usdc
from common.progress import step
from common.text import plural
from common.times import format_market_time
from rounds.exceptions import RoundAlreadySettled
from rounds.models import Round
from rounds.selectors import REQUESTED_RESULTS, round_get
from rounds.services import round_settle


def already_settled_sentence(round_: Round) -> str:
    """The runbook's check answer: what is recorded, and that nothing changed."""
    return (
        f"Round {round_.code} is already SETTLED ({round_.result}) at {format_market_time(round_.settled_at)}; "
        "nothing changed."
    )


class Command(BaseCommand):
    help = (
        "Settle locked round --code with --result AUTO (the oracle) | UP | DOWN | VOID (refund every stake). "
        "On a settled round, AUTO or the recorded result reports it and exits 0; another result is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")
        parser.add_argument("--result", required=True, type=str.upper, choices=REQUESTED_RESULTS)
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        reason = options["reason"] or f"settle_round --result {options['result']} from the command line"
        with command_errors():
            try:
                with step(f"Settling round {options['code']} ({options['result']})", stream=self.stderr):
                    settlement = round_settle(
                        code=options["code"],
                        result=options["result"],
                        reason=reason,
                        acting_user=actor_from_options(options),
                        source="cli",
                    )
            except RoundAlreadySettled:
                # The manual's step 8 checks completion by asking again: AUTO (or the same result) is answered.
                round_ = round_get(code=options["code"])
                if options["result"] not in ("AUTO", round_.result):
                    raise
                self.stdout.write(self.style.SUCCESS(already_settled_sentence(round_)))
                return
        self.stdout.write(self.style.SUCCESS(f"✅ Round {settlement.round.code} SETTLED: {settlement.result}"))
        self.stdout.write(f"   UP pool:    {format_usdc(settlement.up_pool_u, exact=True)}")
        self.stdout.write(f"   DOWN pool:  {format_usdc(settlement.down_pool_u, exact=True)}")
        self.stdout.write(
            f"   Fee:        {format_usdc(settlement.fee_u, exact=True)}, "
            f"dust {format_usdc(settlement.dust_u, exact=True)} (to house)"
        )
        if settlement.result == "VOID":
            self.stdout.write(
                f"   Refunded:   {format_usdc(settlement.paid_out_u, exact=True)} to "
                f"{plural(settlement.bets_count, 'bet')} (no fee)"
            )
        else:
            self.stdout.write(
                f"   Paid out:   {format_usdc(settlement.paid_out_u, exact=True)} to "
                f"{plural(settlement.winners_count, 'winning bet')}"
            )
        self.stdout.write(f"   Settled at: {format_market_time(settlement.round.settled_at)}")
        self.stdout.write(f"   Digest:     {settlement.digest}")
