from django.core.management.base import BaseCommand

from betting.selectors import user_get_by_email
from common.commands import command_errors, parse_amount_u
from common.money import format_usdc
from ledger.selectors import user_balance_u
from withdrawals.services import withdrawal_request


class Command(BaseCommand):
    help = (
        "Queue a withdrawal for a user (the operator at the shell acts on their behalf): user cash -> "
        "withdrawals:pending. Without --destination it goes to the user's newest usable registered address, "
        "else their last payout address, else the address their last deposit came from. Unless the address "
        "is in the user's address book and past its cooling-off, it waits for a staff approval."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user's email")
        parser.add_argument("--amount", required=True, help="micro-USDC (500000 = 0.5 USDC)")
        parser.add_argument("--destination", default="", help="payout address (0x + 40 hex)")

    def handle(self, *args, user: str, amount: str, destination: str, **options):
        amount_u = parse_amount_u(amount)
        with command_errors():
            bettor = user_get_by_email(email=user)
            withdrawal, _ = withdrawal_request(
                user=bettor, amount_u=amount_u, destination=destination, source="cli", from_shell=True
            )
        balance_u = user_balance_u(user_id=bettor.pk)
        approval = " (needs staff approval)" if withdrawal.needs_approval else ""
        self.stdout.write(
            f"Withdrawal {withdrawal.pk} {withdrawal.status}{approval}: {format_usdc(amount_u, exact=True)} "
            f"for {bettor.email} to {withdrawal.destination}; balance now {format_usdc(balance_u, exact=True)}"
        )
