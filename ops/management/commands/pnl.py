import csv as csv_module
import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date

from common.money import format_usdc
from common.times import market_zone
from ops.reports import house_pnl_by_day

FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)
FIELDS = ["date", "fees_u", "adjustments_u", "house_pnl_u", "volume_u"]


class Command(BaseCommand):
    help = "House P&L per day (fees, manual adjustments, net) with --csv export."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", default="", help="YYYY-MM-DD (default: 30 days ago)")
        parser.add_argument(
            "--to", dest="end", default="", help="YYYY-MM-DD, a day in America/New_York (default: today there)"
        )
        parser.add_argument("--csv", nargs="?", const="-", default=None, help="write CSV to this file (or stdout)")

    def handle(self, *args, start: str, end: str, csv: str | None, **options):
        end_day = self._day(end, "--to") if end else timezone.localdate(timezone=market_zone())
        start_day = self._day(start, "--from") if start else end_day - dt.timedelta(days=29)
        if start_day > end_day:
            raise CommandError("--from must not be after --to. [invalid_date]")
        if (end_day - start_day).days > 3660:
            raise CommandError("At most ten years per report. [invalid_date]")
        rows = house_pnl_by_day(start=start_day, end=end_day)
        if csv is not None:
            self._csv(rows, csv)
            return
        self.stdout.write(f"{'date':<10} {'fees_u':>14} {'adjustments_u':>14} {'house_pnl_u':>14} {'volume_u':>16}")
        for row in rows:
            self.stdout.write(
                f"{row.day.isoformat():<10} {row.fees_u:>14} {row.adjustments_u:>14} {row.house_pnl_u:>14} "
                f"{row.volume_u:>16}"
            )
        total = sum(row.house_pnl_u for row in rows)
        self.stdout.write(f"Total house P&L: {format_usdc(total, exact=True)}")

    def _day(self, text: str, option: str) -> dt.date:
        try:
            day = parse_date(text)
        except ValueError:
            day = None
        if day is None:
            raise CommandError(f"{option} must be YYYY-MM-DD, got {text!r}. [invalid_date]")
        if not FIRST_DAY <= day <= LAST_DAY:  # the report steps a month back and a day forward from here
            raise CommandError(f"{option} must be between {FIRST_DAY} and {LAST_DAY}, got {text!r}. [invalid_date]")
        return day

    def _csv(self, rows, target: str) -> None:
        try:
            handle = self.stdout if target == "-" else open(target, "w", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write the CSV to {target}: {exc.strerror or exc}. [cannot_write]") from exc
        try:
            writer = csv_module.writer(handle)
            writer.writerow(FIELDS)
            for row in rows:
                writer.writerow([row.day.isoformat(), row.fees_u, row.adjustments_u, row.house_pnl_u, row.volume_u])
        finally:
            if target != "-":
                handle.close()
                self.stderr.write(f"Wrote {len(rows)} day(s) to {target}.")
