from django.core.management.base import BaseCommand

from common.money import format_usdc
from ledger.selectors import tvl_get


class Command(BaseCommand):
    help = "Total value locked: round pools, user cash, pending withdrawals."

    def handle(self, *args, **options):
        tvl = tvl_get()
        self.stdout.write("📊 TVL Metrics:")
        for label, amount_u in (
            ("Locked:", tvl.locked_u),
            ("Total Cash:", tvl.cash_u),
            ("Pending Withdrawals:", tvl.pending_withdrawals_u),
        ):
            self.stdout.write(f"  {label:<19} {format_usdc(amount_u, exact=True)}")
