from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from withdrawals.exceptions import WithdrawalNotFound
from withdrawals.models import Deposit, DepositIntent, PayoutAddress, Withdrawal


def withdrawal_list(*, user: Any) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(user=user).order_by("-id")


def withdrawal_get(*, withdrawal_id: Any, user: Any = None) -> Withdrawal:
    """One withdrawal; with `user`, only that user's own (another user's is simply not found)."""
    rows = Withdrawal.objects.filter(pk=withdrawal_id)
    if user is not None:
        rows = rows.filter(user=user)
    withdrawal = rows.first()
    if withdrawal is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    return withdrawal


def deposit_list(*, user: Any) -> QuerySet[Deposit]:
    return Deposit.objects.filter(user=user).select_related("intent").order_by("-id")


def deposit_intent_list(*, user: Any) -> QuerySet[DepositIntent]:
    return DepositIntent.objects.filter(user=user).order_by("-id")


def destination_default(*, user: Any) -> str:
    """Where a withdrawal without an address goes: the user's last payout address, else the
    address their last deposit came from (funds go back where they came from), else ""."""
    last_destination = (
        Withdrawal.objects.filter(user=user)
        .exclude(destination="")
        .order_by("-id")
        .values_list("destination", flat=True)
    ).first()
    if last_destination:
        return last_destination
    return (
        Deposit.objects.filter(user=user)
        .exclude(from_address="")
        .order_by("-id")
        .values_list("from_address", flat=True)
    ).first() or ""


def payout_address_list(*, user: Any) -> QuerySet[PayoutAddress]:
    return PayoutAddress.objects.filter(user=user).order_by("-id")


def payout_address_find(*, user: Any, address: str) -> PayoutAddress | None:
    """The user's book entry for `address` (EVM addresses compare case-insensitively; the book is lower-case)."""
    return PayoutAddress.objects.filter(user=user, address=(address or "").lower()).first()


def payout_address_default(*, user: Any) -> str:
    """The user's newest registered address that is past its cooling-off, else ""."""
    return (
        PayoutAddress.objects.filter(user=user, usable_from__lte=timezone.now())
        .order_by("-usable_from", "-id")
        .values_list("address", flat=True)
        .first()
    ) or ""
