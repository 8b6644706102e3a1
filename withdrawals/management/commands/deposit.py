import uuid

from django.core.management.base import BaseCommand

from betting.selectors import user_get_by_email
from common.commands import command_errors, parse_amount_u
from common.money import format_usdc
from ledger.selectors import user_balance_u
from withdrawals.services import deposit_credit


class Command(BaseCommand):
    help = "Credit a user's cash from external:deposits (--amount 0 prints the balance)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user's email")
        parser.add_argument("--amount", required=True, help="micro-USDC (1000000 = 1 USDC)")
        parser.add_argument("--tx-id", default="", help="external transaction id (default: a new one)")
        parser.add_argument("--reason", default="operator deposit")

    def handle(self, *args, user: str, amount: str, tx_id: str, reason: str, **options):
        amount_u = parse_amount_u(amount, allow_zero=True)
        with command_errors():
            bettor = user_get_by_email(email=user)
            if amount_u:
                deposit, created = deposit_credit(
                    user=bettor, amount_u=amount_u, tx_id=tx_id or f"cli:{uuid.uuid4()}", source="cli", reason=reason
                )
                verb = "Credited" if created else "Already credited"
                self.stdout.write(
                    f"{verb} {format_usdc(amount_u, exact=True)} to {bettor.email} [deposit {deposit.tx_id}]"
                )
        balance_u = user_balance_u(user_id=bettor.pk)
        self.stdout.write(f"Balance of {bettor.email}: {format_usdc(balance_u, exact=True)}")
