from django.core.management.base import BaseCommand

from common.money import usdc
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
            self.stdout.write(f"  {label:<19} {amount_u} micro USDC ({usdc(amount_u)} USDC)")
