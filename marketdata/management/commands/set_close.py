from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from marketdata.services import official_close_set


class Command(BaseCommand):
    help = "Record the official close of a symbol on a date (what AUTO settlement compares)."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True, help="e.g. NDX")
        parser.add_argument("--date", required=True, help="YYYY-MM-DD")
        parser.add_argument("--price", required=True, help="decimal, up to 6 places")
        parser.add_argument("--source", default="manual", help="where the price was verified")
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        actor = actor_from_options(options)
        with command_errors():
            close = official_close_set(
                symbol=options["symbol"],
                day=options["date"],
                price=options["price"],
                source=options["source"],
                acting_user=actor,
                channel="cli",
                reason=options["reason"],
            )
        self.stdout.write(
            self.style.SUCCESS(f"Official close {close.symbol} {close.date}: {close.price} ({close.source})")
        )
