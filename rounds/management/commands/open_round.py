from django.core.management.base import BaseCommand

from common.commands import command_errors
from common.times import format_market_time
from rounds.services import round_open


class Command(BaseCommand):
    help = "Open the round of trading day --code YYYYMMDD (idempotent). Weekends and holidays need --force."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")
        parser.add_argument("--force", action="store_true", help="open even though the market is closed that day")
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")

    def handle(self, *args, **options):
        with command_errors():
            round_, _ = round_open(code=options["code"], force=options["force"], source="cli", reason=options["reason"])
        self.stdout.write(
            self.style.SUCCESS(f"✅ Round {round_.code} {round_.status} ({round_.symbol}, fee {round_.fee_bps} bps)")
        )
        # Market times, always in America/New_York with the zone named (the same on a rerun).
        self.stdout.write(f"   Lock at:     {format_market_time(round_.lock_at)}")
        self.stdout.write(f"   Settle at:   {format_market_time(round_.settle_at)}")
        self.stdout.write(f"   Commit hash: {round_.commit_hash}")
