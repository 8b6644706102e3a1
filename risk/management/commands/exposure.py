import json

from django.core.management.base import BaseCommand

from common.commands import bounded_int, command_errors
from common.money import usdc_number
from risk.exposure import round_exposure, round_exposure_json


class Command(BaseCommand):
    help = "A round's exposure: stakes and worst-case payout per side, the largest bettors' shares."

    def add_arguments(self, parser):
        parser.add_argument("--round", required=True, metavar="CODE", help="round code YYYYMMDD")
        parser.add_argument("--top", type=bounded_int(0, 1000), default=10, help="how many bettors to list")
        parser.add_argument("--json", action="store_true", help="print JSON (integers in u)")

    def handle(self, *args, **options):
        with command_errors():
            exposure = round_exposure(code=options["round"], top=options["top"])
        if options["json"]:
            self.stdout.write(json.dumps(round_exposure_json(exposure), indent=2))
            return
        out = self.stdout.write
        out(f"Round {exposure.code} ({exposure.status}), fee {exposure.fee_bps} bps")
        out(f"  pool        {exposure.pool_u:>18} u  {usdc_number(exposure.pool_u):>16} USDC  ({exposure.bets} bets)")
        header = f"{'side':<6}{'staked u':>18}{'bets':>7}{'fee if wins u':>16}{'payout if wins u':>19}"
        out(f"  {header}{'house if wins u':>18}")
        for s in (exposure.up, exposure.down):
            note = "  (VOID: stakes back)" if s.void_if_wins else ""
            out(
                f"  {s.side:<6}{s.staked_u:>18}{s.bets:>7}{s.fee_if_wins_u:>16}{s.payout_if_wins_u:>19}"
                f"{s.house_if_wins_u:>18}{note}"
            )
        out(f"  worst-case payout {exposure.worst_case_payout_u} u ({usdc_number(exposure.worst_case_payout_u)} USDC)")
        if not exposure.top:
            out("  no bets")
            return
        out("  largest bettors (share of their side / of the pool):")
        for b in exposure.top:
            out(
                f"    {b.email:<40} {b.side:<5}{b.staked_u:>16} u  {b.side_share_bps / 100:>6.2f}% "
                f"{b.pool_share_bps / 100:>6.2f}%  pays {b.payout_if_wins_u} u if {b.side} wins"
            )
