"""The only writer of ledger entries and cached balances.

Every movement of money is one balanced batch posted here, inside one database
transaction, under an idempotency key: the same key twice posts once.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Value, When
from django.utils import timezone

from audit.services import audit_record
from ledger.exceptions import IdempotencyConflict, InsufficientFunds, InvalidAmount, UnbalancedBatch, UnknownAccount
from ledger.models import Account, LedgerBatch, LedgerEntry


@dataclass(frozen=True)
class Line:
    account: str
    amount_u: int


@dataclass(frozen=True)
class Posted:
    batch: LedgerBatch
    created: bool


def amount_validate(amount_u: Any, *, field: str = "amount_u", allow_zero: bool = False) -> int:
    """Amounts are whole micro-USDC: an int (not a bool, not a float), positive, within the limit."""
    if isinstance(amount_u, bool) or not isinstance(amount_u, int):
        raise InvalidAmount(f"{field} must be a whole number of micro-USDC.")
    if amount_u < 0 or (amount_u == 0 and not allow_zero):
        raise InvalidAmount(f"{field} must be greater than zero.")
    if amount_u > settings.MAX_AMOUNT_U:
        raise InvalidAmount(f"{field} must not exceed {settings.MAX_AMOUNT_U} u.")
    return amount_u


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _replayed(idempotency_key: str, digest: str) -> LedgerBatch | None:
    batch = LedgerBatch.objects.filter(idempotency_key=idempotency_key).first()
    if batch is not None and batch.lines_digest != digest:
        raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was already used for a different movement.")
    return batch


def ledger_post(
    lines: Iterable[Line | tuple[str, int]],
    *,
    ref_type: str,
    ref_id: Any,
    idempotency_key: str,
    acting_user: Any = None,
    memo: str = "",
    allow_negative: frozenset[str] = frozenset(),
) -> Posted:
    """Post one balanced batch. Locks the touched accounts in code order; refuses overdrafts."""
    lines = [line if isinstance(line, Line) else Line(*line) for line in lines]
    for line in lines:
        if isinstance(line.amount_u, bool) or not isinstance(line.amount_u, int) or line.amount_u == 0:
            raise InvalidAmount("Every ledger line needs a non-zero whole number of micro-USDC.")
        if abs(line.amount_u) > settings.MAX_AMOUNT_U:
            raise InvalidAmount(f"A ledger line must not exceed {settings.MAX_AMOUNT_U} u.")
    total = sum(line.amount_u for line in lines)
    if len(lines) < 2 or total != 0:
        raise UnbalancedBatch(f"A batch needs two or more lines summing to zero; these sum to {total}.")
    net: dict[str, int] = defaultdict(int)
    for line in lines:
        net[line.account] += line.amount_u
    ref_id = str(ref_id)
    digest = _digest({"ref": [ref_type, ref_id], "lines": sorted((line.account, line.amount_u) for line in lines)})
    outermost = not transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic():
            return _post(lines, net, ref_type, ref_id, idempotency_key, digest, acting_user, memo, allow_negative)
    except IntegrityError:
        # The key's unique index refused us because a twin committed first: answer with its batch.
        batch = None if not outermost else _replayed(idempotency_key, digest)
        if batch is None:
            raise
        return Posted(batch=batch, created=False)


def _post(lines, net, ref_type, ref_id, idempotency_key, digest, acting_user, memo, allow_negative) -> Posted:
    replayed = _replayed(idempotency_key, digest)
    if replayed is not None:
        return Posted(batch=replayed, created=False)
    batch = LedgerBatch.objects.create(
        idempotency_key=idempotency_key,
        ref_type=ref_type,
        ref_id=ref_id,
        lines_digest=digest,
        memo=memo,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    # FOR NO KEY UPDATE: does not block the FK checks (KEY SHARE) of concurrent entry inserts.
    accounts = {
        account.code: account
        for account in Account.objects.select_for_update(no_key=True).filter(code__in=list(net)).order_by("code")
    }
    for code in net:
        if code not in accounts:
            raise UnknownAccount(f"No ledger account {code!r}.")
    for code, delta in net.items():
        account = accounts[code]
        # Only money going OUT can overdraw: a credit to an account already below zero (the house
        # after a goodwill credit) is always accepted.
        if (
            delta < 0
            and account.balance_u + delta < 0
            and account.kind != Account.Kind.EXTERNAL
            and code not in allow_negative
        ):
            raise InsufficientFunds(
                f"Insufficient funds in {code}: balance {account.balance_u} u, needs {-delta} u.",
                account=code,
                balance_u=account.balance_u,
            )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(account_id=line.account, amount_u=line.amount_u, ref_type=ref_type, ref_id=ref_id, batch=batch)
        for line in lines
    )
    Account.objects.filter(code__in=list(net)).update(
        balance_u=F("balance_u")
        + Case(*(When(code=code, then=Value(delta)) for code, delta in net.items()), output_field=BigIntegerField())
    )
    return Posted(batch=batch, created=True)


def ledger_post_from_sql(
    *,
    select_sql: str,
    params: Sequence[Any],
    ref_type: str,
    ref_id: Any,
    idempotency_key: str,
    memo: str = "",
    acting_user: Any = None,
) -> Posted:
    """Post one balanced batch whose lines come from a SELECT of (account, amount_u) rows.

    Set-based, for batches too large for Python (a settlement of a million bets):
    the lines never leave the database and memory stays flat. Same rules as
    ledger_post: balanced, accounts locked in code order, no overdraft, idempotent.
    """
    ref_id = str(ref_id)
    digest = _digest({"ref": [ref_type, ref_id], "sql": select_sql, "params": list(params)})
    with transaction.atomic():
        replayed = _replayed(idempotency_key, digest)
        if replayed is not None:
            return Posted(batch=replayed, created=False)
        batch = LedgerBatch.objects.create(
            idempotency_key=idempotency_key,
            ref_type=ref_type,
            ref_id=ref_id,
            lines_digest=digest,
            memo=memo,
            created_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM ledger_accounts WHERE code IN "
                    f"(SELECT account FROM ({select_sql}) lines) ORDER BY code FOR NO KEY UPDATE) locked",
                    params,
                )
            cursor.execute(
                "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
                f"SELECT lines.account, lines.amount_u, %s, %s, %s, %s FROM ({select_sql}) lines "
                "WHERE lines.amount_u <> 0",
                [ref_type, ref_id, batch.pk, timezone.now(), *params],
            )
            cursor.execute(
                "SELECT COALESCE(SUM(amount_u), 0), COUNT(*) FROM ledger_entries WHERE batch = %s", [batch.pk]
            )
            total, count = cursor.fetchone()
            if count < 2 or total != 0:
                raise UnbalancedBatch(f"A batch needs two or more lines summing to zero; these sum to {total}.")
            cursor.execute(
                "SELECT e.account FROM ledger_entries e LEFT JOIN ledger_accounts a ON a.code = e.account "
                "WHERE e.batch = %s AND a.id IS NULL LIMIT 1",
                [batch.pk],
            )
            missing = cursor.fetchone()
            if missing:
                raise UnknownAccount(f"No ledger account {missing[0]!r}.")
            moved = (
                "(SELECT account, SUM(amount_u) AS total FROM ledger_entries WHERE batch = %s GROUP BY account) moved"
            )
            cursor.execute(
                f"SELECT a.code, a.balance_u, moved.total FROM ledger_accounts a JOIN {moved} "
                "ON a.code = moved.account WHERE moved.total < 0 AND a.balance_u + moved.total < 0 "
                "AND a.kind <> 'external' LIMIT 1",
                [batch.pk],
            )
            overdrawn = cursor.fetchone()
            if overdrawn:
                code, balance_u, total = overdrawn
                raise InsufficientFunds(f"Insufficient funds in {code}: balance {balance_u} u, needs {-total} u.")
            cursor.execute(
                f"UPDATE ledger_accounts SET balance_u = ledger_accounts.balance_u + moved.total FROM {moved} "
                "WHERE ledger_accounts.code = moved.account",
                [batch.pk],
            )
    return Posted(batch=batch, created=True)


def account_ensure(*, code: str, kind: str, owner: Any = None) -> Account:
    account, _ = Account.objects.get_or_create(code=code, defaults={"kind": kind, "owner": owner})
    return account


def account_ensure_user_cash(*, user: Any) -> Account:
    return account_ensure(code=Account.user_cash_code(user.pk), kind=Account.Kind.USER_CASH, owner=user)


def ledger_manual_adjust(
    *,
    user: Any,
    amount_u: int,
    direction: str,
    reason: str,
    acting_user: Any,
    source: str,
    idempotency_key: str,
) -> Posted:
    """Finance staff credit or debit a user's cash against the house, with a reason. Audited.

    This is the one path that may take the house below zero (a goodwill credit
    larger than the fees earned so far).
    """
    amount_validate(amount_u)
    if direction not in ("credit", "debit"):
        raise InvalidAmount("Direction must be 'credit' or 'debit'.", code="invalid_direction")
    if not (reason or "").strip():
        raise InvalidAmount("A manual adjustment needs a reason.", code="reason_required")
    if acting_user is not None and not acting_user.has_perm("ledger.manual_adjust"):
        raise InvalidAmount("You need the 'manual adjust' permission (finance).", code="permission_denied", status=403)
    cash = account_ensure_user_cash(user=user).code
    sign = 1 if direction == "credit" else -1
    with transaction.atomic():
        before = Account.objects.get(code=cash).balance_u
        posted = ledger_post(
            [Line(cash, sign * amount_u), Line(Account.HOUSE, -sign * amount_u)],
            ref_type="manual_adjustment",
            ref_id=user.pk,
            idempotency_key=idempotency_key,
            acting_user=acting_user,
            memo=reason,
            allow_negative=frozenset({Account.HOUSE}) if direction == "credit" else frozenset(),
        )
        if posted.created:
            audit_record(
                action=f"ledger.manual_{direction}",
                source=source,
                actor=acting_user,
                object_type="account",
                object_id=cash,
                reason=reason,
                before={"balance_u": before},
                after={"balance_u": before + sign * amount_u, "batch": posted.batch.pk, "amount_u": amount_u},
            )
    return posted
