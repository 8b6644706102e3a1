import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from common.commands import bounded_int, command_errors
from marketdata.services import ticks_archive

_DAYS = re.compile(r"^(\d{1,4})d$")


def older_than_days(text: str) -> int:
    match = _DAYS.match(text.strip())
    if not match or not 1 <= int(match.group(1)) <= 3650:
        raise CommandError(f"--older-than must be a number of days like 30d (1d-3650d), got {text!r}. [invalid_age]")
    return int(match.group(1))


class Command(BaseCommand):
    help = "Delete ticks older than N days in batches, keeping each day's OHLC in price_tick_daily (1d candles)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="e.g. 30d")
        parser.add_argument("--batch-size", type=bounded_int(1, 1_000_000), default=50_000)

    def handle(self, *args, **options):
        days = older_than_days(options["older_than"])
        with command_errors():
            report = ticks_archive(
                older_than=timedelta(days=days),
                batch_size=options["batch_size"],
                progress=lambda line: self.stdout.write(f"  {line}"),
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived {report.deleted} tick(s) before {report.cutoff:%Y-%m-%d %H:%M} (UTC-05:00); "
                f"{report.days} new daily summary row(s)."
            )
        )
