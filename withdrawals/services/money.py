"""The ledger side of deposits and withdrawals: which accounts each movement names, under which key.

Every movement is one `ledger_post`; one idempotency key per withdrawal for the way out of pending
(`withdrawal:<id>:release`), so a withdrawal can never be both paid and refunded:

    deposit:          external:deposits    -> user cash               deposit:<tx_id>
    request:          user cash            -> withdrawals:pending     withdrawal:<id>:reserve
    complete:         withdrawals:pending  -> external:withdrawals    withdrawal:<id>:release
    fail / cancel:    withdrawals:pending  -> user cash               withdrawal:<id>:release

Account codes and the cash-row lock come from ledger's services; this app names no ledger model.
"""

from typing import Any

from common.types import User
from ledger.selectors import (
    EXTERNAL_DEPOSITS_ACCOUNT,
    EXTERNAL_WITHDRAWALS_ACCOUNT,
    WITHDRAWALS_PENDING_ACCOUNT,
    account_code_user_cash,
)
from ledger.services import (
    Line,
    Posting,
    account_ensure_user_cash,
    account_lock,
    accounts_ensure_user_cash,
    ledger_post,
    ledger_post_many,
)
from withdrawals.models import Deposit, Withdrawal


def user_cash_ensure(*, user: User) -> str:
    """The code of the user's cash account, created on first use."""
    return account_ensure_user_cash(user=user).code


def user_cash_ensure_many(*, user_ids: list[Any]) -> list[str]:
    """The codes of many users' cash accounts, the missing ones created in one statement."""
    return accounts_ensure_user_cash(user_ids=user_ids)


def user_cash_lock(*, cash_code: str) -> None:
    """Lock the user's cash row (inside the caller's transaction): the row `ledger_post` locks first anyway
    (codes sort user: < withdrawals:), so taking it early serialises one user's requests."""
    account_lock(code=cash_code)


def deposit_post_credit(*, deposit: Deposit, cash_code: str, acting_user: User | None) -> None:
    ledger_post(
        _deposit_credit_lines(deposit, cash_code),
        ref_type="deposit",
        ref_id=deposit.pk,
        idempotency_key=f"deposit:{deposit.tx_id}",
        acting_user=acting_user,
    )


def _deposit_credit_lines(deposit: Deposit, cash_code: str) -> list[Line]:
    return [Line(cash_code, deposit.amount_u), Line(EXTERNAL_DEPOSITS_ACCOUNT, -deposit.amount_u)]


def deposit_post_credit_many(*, deposits: list[tuple[Deposit, str]], acting_user: User | None) -> None:
    """(deposit, cash code) pairs: each its own batch, key and lines as deposit_post_credit, posted together."""
    ledger_post_many(
        [
            Posting(
                lines=_deposit_credit_lines(deposit, cash_code),
                ref_type="deposit",
                ref_id=deposit.pk,
                idempotency_key=f"deposit:{deposit.tx_id}",
            )
            for deposit, cash_code in deposits
        ],
        acting_user=acting_user,
    )


def withdrawal_post_reserve(*, withdrawal: Withdrawal, cash_code: str, acting_user: User | None) -> None:
    ledger_post(
        [Line(cash_code, -withdrawal.amount_u), Line(WITHDRAWALS_PENDING_ACCOUNT, withdrawal.amount_u)],
        ref_type="withdrawal",
        ref_id=withdrawal.pk,
        idempotency_key=f"withdrawal:{withdrawal.pk}:reserve",
        acting_user=acting_user,
    )


def withdrawal_post_payout(*, withdrawal: Withdrawal, acting_user: User | None) -> None:
    """The custodian paid it: pending -> external:withdrawals."""
    _release(withdrawal, to_account=EXTERNAL_WITHDRAWALS_ACCOUNT, acting_user=acting_user)


def withdrawal_post_refund(*, withdrawal: Withdrawal, acting_user: User | None) -> None:
    """Cancelled or failed: pending -> the user's cash."""
    _release(withdrawal, to_account=account_code_user_cash(user_id=withdrawal.user_id), acting_user=acting_user)


def _release(withdrawal: Withdrawal, *, to_account: str, acting_user: User | None) -> None:
    """Move the amount out of pending. One key per withdrawal: paid or refunded, never both."""
    ledger_post(
        [Line(WITHDRAWALS_PENDING_ACCOUNT, -withdrawal.amount_u), Line(to_account, withdrawal.amount_u)],
        ref_type="withdrawal",
        ref_id=withdrawal.pk,
        idempotency_key=f"withdrawal:{withdrawal.pk}:release",
        acting_user=acting_user,
    )
