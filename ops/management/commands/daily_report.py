from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date

from common.money import format_usdc
from common.times import market_zone
from ledger.selectors import tvl_get
from ops.reports import daily_report_get


class Command(BaseCommand):
    help = "The manual's daily report: users, active bettors, volume, fees, house P&L, rounds, deposits, withdrawals."

    def add_arguments(self, parser):
        parser.add_argument("--date", default="", help="YYYY-MM-DD, a day in America/New_York (default: today there)")

    def handle(self, *args, date: str, **options):
        try:
            day = parse_date(date) if date else timezone.localdate(timezone=market_zone())
        except ValueError:
            day = None
        if day is None:
            raise CommandError(f"--date must be YYYY-MM-DD, got {date!r}. [invalid_date]")
        report = daily_report_get(day=day)
        tvl = tvl_get()

        def money(amount_u: int) -> str:
            return f"{format_usdc(amount_u, exact=True)}"

        lines = [
            f"Daily Report for {day.isoformat()}",
            "========================",
            f"Total Users: {report.total_users} ({report.new_users} new)",
            f"Active Bettors: {report.active_bettors}",
            f"Bets: {report.bets}",
            f"Daily Volume: {money(report.volume_u)}",
            f"Fees: {money(report.fees_u)}",
            f"House P&L: {money(report.house_pnl_u)}",
            f"Rounds Settled: {report.rounds_settled}",
            f"Deposits: {report.deposits} totalling {money(report.deposits_u)}",
            f"Withdrawals Requested: {report.withdrawals_requested} totalling {money(report.withdrawals_requested_u)}",
            f"Withdrawals Completed: {report.withdrawals_completed} totalling {money(report.withdrawals_completed_u)}",
            "TVL now:",
            f"  Locked: {money(tvl.locked_u)}",
            f"  Total Cash: {money(tvl.cash_u)}",
            f"  Pending Withdrawals: {money(tvl.pending_withdrawals_u)}",
        ]
        self.stdout.write("\n".join(lines))
