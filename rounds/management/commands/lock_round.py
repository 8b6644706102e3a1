from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from rounds.services import round_lock


class Command(BaseCommand):
    help = "Lock round --code (OPEN -> LOCKED): no more bets."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")
        parser.add_argument("--reason", default="locked from the command line", help="recorded in the audit log")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        with command_errors():
            round_ = round_lock(
                code=options["code"], reason=options["reason"], acting_user=actor_from_options(options), source="cli"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"🔒 Round {round_.code} LOCKED: UP pool {round_.up_pool_u} u, DOWN pool {round_.down_pool_u} u"
            )
        )
