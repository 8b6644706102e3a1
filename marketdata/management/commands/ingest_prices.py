from django.core.management.base import BaseCommand

from common.commands import command_errors
from marketdata.services import prices_ingest


class Command(BaseCommand):
    help = "Poll every enabled price source once for a live quote of each symbol and store the new ticks."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", action="append", help="a symbol (repeatable); default PRICE_SYMBOLS")

    def handle(self, *args, **options):
        with command_errors():
            report = prices_ingest(symbols=options["symbol"])
        for key, outcome in sorted(report.outcomes.items()):
            self.stdout.write(f"  {key}: {outcome}")
        if not report.outcomes:
            self.stdout.write("  no enabled source has a quote_url: nothing polled")
        self.stdout.write(self.style.SUCCESS(f"{report.ticks} new tick(s)."))
