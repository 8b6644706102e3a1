from typing import Any

from django.db import transaction

from ledger.models import Account
from ledger.services import Line, account_ensure_user_cash, amount_validate, ledger_post
from ops.services import audit_record
from withdrawals.exceptions import DepositConflict
from withdrawals.models import Deposit, Withdrawal


def deposit_credit(
    *,
    user: Any,
    amount_u: int,
    tx_id: str,
    source: str,
    acting_user: Any = None,
    payload: dict | None = None,
    reason: str = "",
) -> tuple[Deposit, bool]:
    """Credit a deposit once per external tx id: external:deposits -> user cash."""
    amount_validate(amount_u)
    cash = account_ensure_user_cash(user=user).code
    with transaction.atomic():
        deposit, created = Deposit.objects.get_or_create(
            tx_id=tx_id, defaults={"user": user, "amount_u": amount_u, "source": source, "raw_payload": payload}
        )
        if not created and (deposit.user_id != user.pk or deposit.amount_u != amount_u):
            raise DepositConflict(f"Deposit {tx_id!r} was already recorded with another user or amount.")
        ledger_post(
            [Line(cash, amount_u), Line(Account.EXTERNAL_DEPOSITS, -amount_u)],
            ref_type="deposit",
            ref_id=deposit.pk,
            idempotency_key=f"deposit:{tx_id}",
            acting_user=acting_user,
        )
        if created and source in ("cli", "admin"):
            audit_record(
                action="deposit.credit",
                source=source,
                actor=acting_user,
                object_type="deposit",
                object_id=deposit.pk,
                reason=reason,
                after={"user": str(user.pk), "amount_u": amount_u, "tx_id": tx_id},
            )
    return deposit, created


def withdrawal_request(
    *, user: Any, amount_u: int, destination: str = "", source: str, acting_user: Any = None
) -> Withdrawal:
    """Queue a withdrawal: user cash -> withdrawals:pending, in one batch."""
    amount_validate(amount_u)
    cash = account_ensure_user_cash(user=user).code
    with transaction.atomic():
        withdrawal = Withdrawal.objects.create(user=user, amount_u=amount_u, destination=destination)
        ledger_post(
            [Line(cash, -amount_u), Line(Account.WITHDRAWALS_PENDING, amount_u)],
            ref_type="withdrawal",
            ref_id=withdrawal.pk,
            idempotency_key=f"withdrawal:{withdrawal.pk}:reserve",
            acting_user=acting_user,
        )
        if source in ("cli", "admin"):
            audit_record(
                action="withdrawal.request",
                source=source,
                actor=acting_user,
                object_type="withdrawal",
                object_id=withdrawal.pk,
                after={"user": str(user.pk), "amount_u": amount_u, "status": withdrawal.status},
            )
    return withdrawal
