import json
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
        parser.add_argument(
            "--live",
            default="",
            metavar="URL",
            help="drive a running server over HTTP (today); with --faults: 'local', the bets over HTTP to a gunicorn "
            "the run starts on this database (web_kill kills its workers)",
        )
        parser.add_argument("--i-know", action="store_true", help="run even with production settings")
        parser.add_argument(
            "--faults",
            default="",
            metavar="KIND[,KIND...]|all",
            help="chaos days: a seeded fault schedule and an invariant check after every day (risk.chaos)",
        )
        parser.add_argument(
            "--fault-rate", type=float, default=0.3, help="chance of each fault kind on each day (0..1, default 0.3)"
        )
        parser.add_argument("--replay", type=bounded_int(0, 2**31), default=None, metavar="SEED", help="replay a seed")
        parser.add_argument(
            "--day", type=bounded_int(1, 260), default=None, help="with --replay: stop after that day's check"
        )
        parser.add_argument("--summary-json", default="", metavar="PATH", help="with --faults: write the run's summary")

    def handle(self, *args, **options):
        module = os.environ.get("DJANGO_SETTINGS_MODULE", "") or getattr(settings, "SETTINGS_MODULE", "")
        if module == PRODUCTION_SETTINGS and not options["i_know"]:
            raise CommandError(
                "These are production settings: simulate writes synthetic rounds, bets and money to this database. "
                "Add --i-know if that is what you want. [production_refused]"
            )
        if options["replay"] is not None:
            options["seed"] = options["replay"]
            options["faults"] = options["faults"] or "all"
        if options["faults"]:
            return self._chaos(options)
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

    def _chaos(self, options) -> None:
        from risk.chaos import CHAOS_START, LIVE, ChaosSimulator, InvariantBroken, chaos_table, fault_kinds_parse

        try:
            kinds = fault_kinds_parse(options["faults"])
        except ValueError as exc:
            raise CommandError(f"{exc} [unknown_fault]") from exc
        if options["live"] not in ("", LIVE):
            raise CommandError(
                f"With --faults, --live takes '{LIVE}' (a gunicorn this run starts, to kill its workers), "
                f"not {options['live']!r}. [live_needs_local]"
            )
        if not 0 <= options["fault_rate"] <= 1:
            raise CommandError("--fault-rate must be between 0 and 1. [bad_fault_rate]")
        with command_errors():
            start = date_parse(options["start"] or CHAOS_START)
        days = trading_days(count=options["days"], start=start, today=market_today(now=timezone.now()))
        if options["day"] is not None and options["day"] > len(days):
            raise CommandError(f"--day {options['day']} is past the {len(days)} days played. [bad_day]")
        if days[-1] >= market_today(now=timezone.now()):
            raise CommandError(f"{days[-1]:%Y%m%d} has not closed yet: chaos plays past days only. [day_not_past]")
        logging.getLogger("rounds.services").setLevel(logging.WARNING)
        logging.getLogger("withdrawals.services.payouts").setLevel(logging.CRITICAL)
        logging.getLogger("kombu").setLevel(logging.ERROR)
        with command_errors():
            simulator = ChaosSimulator(
                days=days,
                bettors=options["bettors"],
                seed=options["seed"],
                kinds=kinds,
                rate=options["fault_rate"],
                stop_after=options["day"],
                live=options["live"] == LIVE,
                progress=self._progress,
            )
        self.stderr.write(
            f"simulate --faults: seed {options['seed']}, {len(days)} day(s) {days[0]:%Y%m%d}..{days[-1]:%Y%m%d}, "
            f"{options['bettors']} bettors, {len(simulator.schedule)} faults scheduled"
        )
        broken: InvariantBroken | None = None
        try:
            simulator.run()
        except InvariantBroken as exc:
            broken = exc
        summary = simulator.summary(broken=broken)
        for line in chaos_table([summary]):
            self.stdout.write(line)
        if options["summary_json"]:
            with open(options["summary_json"], "w") as handle:
                json.dump(summary, handle)
        if broken is not None:
            raise CommandError(f"{broken} [invariant_broken]")
        self.stdout.write(f"fingerprint {summary['fingerprint']}")

    def _progress(self, line: str) -> None:
        self.stderr.write(line)
        if hasattr(sys.stderr, "flush"):
            sys.stderr.flush()
