import logging
import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from common.commands import bounded_int, command_errors
from marketdata.selectors import market_close_at, market_today
from marketdata.services import date_parse
from risk.simulation import SYNTHETIC_DOMAIN, Simulator, report_table, trading_days

PRODUCTION_SETTINGS = "config.settings.production"


class Command(BaseCommand):
    help = (
        "Play whole trading days with synthetic bettors (sim-NNNNN@simulate.invalid) through the real services: "
        "open, deposits, bets (sizes, sides, late bursts, retries, bad requests), withdrawals, lock, a synthetic "
        "close, AUTO settlement; then ledger_audit and a day-by-day table. Past days are played on a travelled "
        "clock; --live URL drives a running server over HTTP instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=bounded_int(1, 260), default=5, help="trading days to play")
        parser.add_argument("--bettors", type=bounded_int(1, 20_000), default=50, help="synthetic bettors")
        parser.add_argument("--seed", type=bounded_int(0, 2**31), default=1, help="same seed, same table")
        parser.add_argument(
            "--start", default="", metavar="YYYYMMDD", help="first day (default: the DAYS trading days before today)"
        )
        parser.add_argument(
            "--time-travel",
            action="store_true",
            help="also play today's or future days on a travelled clock (they would open real rounds early)",
        )
        parser.add_argument("--live", default="", metavar="URL", help="drive a running server over HTTP (today)")
        parser.add_argument("--i-know", action="store_true", help="run even with production settings")

    def handle(self, *args, **options):
        module = os.environ.get("DJANGO_SETTINGS_MODULE", "") or getattr(settings, "SETTINGS_MODULE", "")
        if module == PRODUCTION_SETTINGS and not options["i_know"]:
            raise CommandError(
                "These are production settings: simulate writes synthetic rounds, bets and money to this database. "
                "Add --i-know if that is what you want. [production_refused]"
            )
        if options["live"]:
            from risk.simulation_live import live_run

            with command_errors():
                for line in live_run(
                    url=options["live"], bettors=options["bettors"], seed=options["seed"], progress=self._progress
                ):
                    self.stdout.write(line)
            return
        today = market_today(now=timezone.now())
        start = None
        if options["start"]:
            with command_errors():
                start = date_parse(options["start"])
        days = trading_days(count=options["days"], start=start, today=today)
        if not days:
            raise CommandError("No trading day in that range. [no_trading_day]")
        not_past = [d for d in days if d >= today or (market_close_at(day=d) or timezone.now()) > timezone.now()]
        if not_past and not options["time_travel"]:
            raise CommandError(
                f"{not_past[0]:%Y%m%d} has not closed yet: playing it would open and settle a real day's round "
                "ahead of time. Use past days (the default), or --time-travel if you mean it. [day_not_past]"
            )
        self.stderr.write(
            f"simulate: {len(days)} trading day(s) {days[0]:%Y%m%d}..{days[-1]:%Y%m%d}, {options['bettors']} "
            f"synthetic bettors (@{SYNTHETIC_DOMAIN}), seed {options['seed']}"
        )
        if options["verbosity"] < 2:  # the services' INFO lines (opened / locked / settled) would drown the progress
            logging.getLogger("rounds.services").setLevel(logging.WARNING)
        with command_errors():
            report = Simulator(
                days=days, bettors=options["bettors"], seed=options["seed"], progress=self._progress
            ).run()
        for line in report_table(report):
            self.stdout.write(line)
        call_command("ledger_audit", stdout=self.stdout, stderr=self.stderr)
        settle_ms = ", ".join(f"{d.code} {d.settle_seconds * 1000:.0f}" for d in report.played)
        self.stderr.write(f"wall time {report.wall_seconds:.1f} s; settlement ms per day: {settle_ms or '-'}")
        if not report.ledger_ok or not report.totals_match:
            raise CommandError("The table does not match the ledger (see above). [simulation_mismatch]")

    def _progress(self, line: str) -> None:
        self.stderr.write(line)
        if hasattr(sys.stderr, "flush"):
            sys.stderr.flush()
