"""The only writer of ledger entries and cached balances.

Every movement of money is one balanced batch posted here, inside one database
transaction, under an idempotency key: the same key twice posts once.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Value, When
from django.utils import timezone

from approvals.exceptions import FourEyesRequired
from approvals.models import ApprovalRequest
from approvals.services import approval_grant, approval_reason, approval_request
from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.idempotency import replay_check, request_digest
from common.types import User
from ledger.exceptions import InsufficientFunds, InvalidAmount, UnbalancedBatch, UnknownAccount
from ledger.models import Account, LedgerBatch, LedgerEntry


@dataclass(frozen=True)
class Line:
    """One ledger line: the one shape both posting paths take (no bare tuples)."""

    account: str
    amount_u: int


def _lines_of(lines: Iterable[Line]) -> list[Line]:
    """The lines as a list; anything but a `Line` is a programming error, refused before any check reads it."""
    listed = list(lines)
    for line in listed:
        if not isinstance(line, Line):
            raise TypeError(f"A ledger line is a ledger.services.Line, not {type(line).__name__}.")
    return listed


class Posted(NamedTuple):
    """What a post made: the batch, and whether this call created it (False: a replay of its key)."""

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


# --- The rules of a batch, stated once -------------------------------------------------------
# ledger_post applies them to lines it holds in Python; ledger_post_from_sql to the facts it reads
# back from the entries it inserted (min, max, count, sum; the accounts going below zero). Both
# paths call these functions, so the two cannot drift.


def _line_amount_check(amount_u: Any, *, max_line_u: int | None) -> None:
    """Every line: a non-zero whole number of micro-USDC, at most `max_line_u` either way.

    The bound is MAX_AMOUNT_U, the most one movement may carry, unless the caller names a
    tighter or wider one for a batch of sums (a settlement: no line can exceed its pool).
    """
    limit_u = settings.MAX_AMOUNT_U if max_line_u is None else max_line_u
    if isinstance(amount_u, bool) or not isinstance(amount_u, int) or amount_u == 0:
        raise InvalidAmount("Every ledger line needs a non-zero whole number of micro-USDC.")
    if abs(amount_u) > limit_u:
        raise InvalidAmount(f"A ledger line must not exceed {limit_u} u.")


def _balanced_check(*, count: int, total: int) -> None:
    if count < 2 or total != 0:
        raise UnbalancedBatch(f"A batch needs two or more lines summing to zero; these sum to {total}.")


def _overdraft_check(*, code: str, kind: str, balance_u: int, delta_u: int, allow_negative: frozenset[str]) -> None:
    """Only money going OUT can overdraw: a credit to an account already below zero (the house after
    a goodwill credit) is always accepted. World accounts may go negative; the house only when the
    caller names it in `allow_negative` (a manual adjustment by finance)."""
    if delta_u < 0 and balance_u + delta_u < 0 and kind != Account.Kind.EXTERNAL and code not in allow_negative:
        raise InsufficientFunds(
            f"Insufficient funds in {code}: balance {balance_u} u, needs {-delta_u} u.",
            account=code,
            balance_u=balance_u,
        )


def _batch_open(
    *, idempotency_key: str, digest: str, ref_type: str, ref_id: str, memo: str, acting_user: User | None
) -> Posted:
    """Claim the key: the earlier batch of the same request (created=False), or a new empty batch."""
    earlier = _earlier_batch(idempotency_key, digest)
    if earlier is not None:
        return earlier
    batch = LedgerBatch.objects.create(
        idempotency_key=idempotency_key,
        ref_type=ref_type,
        ref_id=ref_id,
        lines_digest=digest,
        memo=memo,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    return Posted(batch=batch, created=True)


def _earlier_batch(idempotency_key: str, digest: str) -> Posted | None:
    """The batch already posted under the key, if the same request made it; another request is 422."""
    earlier = LedgerBatch.objects.filter(idempotency_key=idempotency_key).first()
    if earlier is None:
        return None
    replay_check(key=idempotency_key, stored_digest=earlier.lines_digest, digest=digest, what="movement")
    return Posted(batch=earlier, created=False)


def ledger_post(
    lines: Iterable[Line],
    *,
    ref_type: str,
    ref_id: Any,
    idempotency_key: str,
    acting_user: User | None = None,
    memo: str = "",
    allow_negative: frozenset[str] = frozenset(),
    max_line_u: int | None = None,
) -> Posted:
    """Post one balanced batch. Locks the touched accounts in code order; refuses overdrafts."""
    checked = _lines_of(lines)
    for line in checked:
        _line_amount_check(line.amount_u, max_line_u=max_line_u)
    _balanced_check(count=len(checked), total=sum(line.amount_u for line in checked))
    net: dict[str, int] = defaultdict(int)
    for line in checked:
        net[line.account] += line.amount_u
    ref = str(ref_id)
    digest = request_digest(
        {"ref": [ref_type, ref], "lines": sorted((line.account, line.amount_u) for line in checked)}
    )
    outermost = not transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic():
            return _post(checked, net, ref_type, ref, idempotency_key, digest, acting_user, memo, allow_negative)
    except IntegrityError:
        # The key's unique index refused us because a twin committed first: answer with its batch.
        earlier = _earlier_batch(idempotency_key, digest) if outermost else None
        if earlier is None:
            raise
        return earlier


def _post(
    lines: list[Line],
    net: dict[str, int],
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    digest: str,
    acting_user: User | None,
    memo: str,
    allow_negative: frozenset[str],
) -> Posted:
    posted = _batch_open(
        idempotency_key=idempotency_key,
        digest=digest,
        ref_type=ref_type,
        ref_id=ref_id,
        memo=memo,
        acting_user=acting_user,
    )
    if not posted.created:
        return posted
    # FOR NO KEY UPDATE: does not block the FK checks (KEY SHARE) of concurrent entry inserts.
    accounts = {
        account.code: account
        for account in Account.objects.select_for_update(no_key=True).filter(code__in=list(net)).order_by("code")
    }
    for code in net:
        if code not in accounts:
            raise UnknownAccount(f"No ledger account {code!r}.")
    for code, delta_u in net.items():
        account = accounts[code]
        _overdraft_check(
            code=code, kind=account.kind, balance_u=account.balance_u, delta_u=delta_u, allow_negative=allow_negative
        )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            account_id=line.account, amount_u=line.amount_u, ref_type=ref_type, ref_id=ref_id, batch=posted.batch
        )
        for line in lines
    )
    Account.objects.filter(code__in=list(net)).update(
        balance_u=F("balance_u")
        + Case(*(When(code=code, then=Value(delta)) for code, delta in net.items()), output_field=BigIntegerField())
    )
    return posted


def _lines_sql(
    *, select_sql: str, user_cash_sql: str, params: Sequence[Any], lines: Sequence[Line]
) -> tuple[str, list[Any]]:
    """One SELECT of (account, amount_u) rows from the caller's pieces; only the ledger names its tables.

    `user_cash_sql` yields (user_id, amount_u) rows: each user's total becomes one line on that
    user's cash account (a user without one drops out, and the batch no longer balances).
    """
    if bool(select_sql) == bool(user_cash_sql):
        raise ValueError("ledger_post_from_sql takes exactly one of select_sql or user_cash_sql")
    if select_sql:
        parts, all_params = [select_sql], list(params)
    else:
        parts = [
            "SELECT a.code AS account, SUM(u.amount_u) AS amount_u "
            f"FROM ({user_cash_sql}) u JOIN ledger_accounts a ON a.owner_id = u.user_id AND a.kind = %s GROUP BY a.code"
        ]
        all_params = [*params, Account.Kind.USER_CASH.value]
    if lines and select_sql:
        parts = [f"SELECT given.account, given.amount_u FROM ({select_sql}) given"]
    for line in lines:
        parts.append("SELECT CAST(%s AS VARCHAR(100)), CAST(%s AS BIGINT)")
        all_params += [line.account, line.amount_u]
    return " UNION ALL ".join(parts), all_params


def ledger_post_from_sql(
    *,
    select_sql: str = "",
    user_cash_sql: str = "",
    params: Sequence[Any] = (),
    lines: Sequence[Line] = (),
    ref_type: str,
    ref_id: Any,
    idempotency_key: str,
    memo: str = "",
    acting_user: User | None = None,
    allow_negative: frozenset[str] = frozenset(),
    max_line_u: int | None = None,
) -> Posted:
    """Post one balanced batch whose lines come from a SELECT, plus any fixed `lines`.

    Set-based, for batches too large for Python (a settlement of a million bets): the lines
    never leave the database and memory stays flat. The SELECT is either `select_sql` of
    (account, amount_u) rows or `user_cash_sql` of (user_id, amount_u) rows (the ledger finds
    the cash accounts); lines whose amount is 0 are left out. The same rules as ledger_post,
    checked by the same functions: every line within `max_line_u` (MAX_AMOUNT_U), balanced, accounts locked
    in code order, no overdraft outside `allow_negative`, and the key replays the same request
    once (another request under it is IdempotencyConflict).
    """
    fixed: list[Line] = []
    for line in _lines_of(lines):
        if type(line.amount_u) is int and line.amount_u == 0:
            continue  # left out like the SELECT's zero rows (a void round's house line)
        _line_amount_check(line.amount_u, max_line_u=max_line_u)
        fixed.append(line)
    sql, all_params = _lines_sql(select_sql=select_sql, user_cash_sql=user_cash_sql, params=params, lines=fixed)
    ref_id = str(ref_id)
    digest = request_digest({"ref": [ref_type, ref_id], "sql": sql, "params": all_params})
    with transaction.atomic():
        posted = _batch_open(
            idempotency_key=idempotency_key,
            digest=digest,
            ref_type=ref_type,
            ref_id=ref_id,
            memo=memo,
            acting_user=acting_user,
        )
        if not posted.created:
            return posted
        batch_id = posted.batch.pk
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # SQLite: IMMEDIATE transactions already serialise writers
                cursor.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM ledger_accounts WHERE code IN "
                    f"(SELECT account FROM ({sql}) lines) ORDER BY code FOR NO KEY UPDATE) locked",
                    all_params,
                )
            cursor.execute(
                "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
                f"SELECT lines.account, lines.amount_u, %s, %s, %s, %s FROM ({sql}) lines "
                "WHERE lines.amount_u <> 0",
                [ref_type, ref_id, batch_id, timezone.now(), *all_params],
            )
            cursor.execute(
                "SELECT COUNT(*), COALESCE(SUM(amount_u), 0), MIN(amount_u), MAX(amount_u) "
                "FROM ledger_entries WHERE batch = %s",
                [batch_id],
            )
            count, total, smallest_u, largest_u = cursor.fetchone()
            if count:
                _line_amount_check(int(smallest_u), max_line_u=max_line_u)
                _line_amount_check(int(largest_u), max_line_u=max_line_u)
            _balanced_check(count=count, total=int(total))
            cursor.execute(
                "SELECT e.account FROM ledger_entries e LEFT JOIN ledger_accounts a ON a.code = e.account "
                "WHERE e.batch = %s AND a.id IS NULL LIMIT 1",
                [batch_id],
            )
            missing = cursor.fetchone()
            if missing:
                raise UnknownAccount(f"No ledger account {missing[0]!r}.")
            moved = (
                "(SELECT account, SUM(amount_u) AS total FROM ledger_entries WHERE batch = %s GROUP BY account) moved"
            )
            # Only the accounts this batch would take below zero come back; the rule decides which may.
            cursor.execute(
                f"SELECT a.code, a.kind, a.balance_u, moved.total FROM ledger_accounts a JOIN {moved} "
                "ON a.code = moved.account WHERE moved.total < 0 AND a.balance_u + moved.total < 0",
                [batch_id],
            )
            for code, kind, balance_u, delta_u in cursor.fetchall():
                _overdraft_check(
                    code=code, kind=kind, balance_u=balance_u, delta_u=int(delta_u), allow_negative=allow_negative
                )
            cursor.execute(
                f"UPDATE ledger_accounts SET balance_u = ledger_accounts.balance_u + moved.total FROM {moved} "
                "WHERE ledger_accounts.code = moved.account",
                [batch_id],
            )
    return posted


def account_lock(*, code: str) -> None:
    """Lock an account's row now, inside the caller's transaction (the row `ledger_post` locks anyway).

    A caller whose rule spans several requests of one user (a daily withdrawal limit) takes the
    user's cash row first, so those requests queue here instead of racing past the rule.
    """
    Account.objects.select_for_update(no_key=True).filter(code=code).first()


def account_ensure(*, code: str, kind: str, owner: User | None = None) -> tuple[Account, bool]:
    """The account with this code, made if missing: (account, created)."""
    return Account.objects.get_or_create(code=code, defaults={"kind": kind, "owner": owner})


def account_ensure_round_pool(*, round_code: str) -> tuple[Account, bool]:
    """The pool account of a round, where its stakes wait for the settlement."""
    return account_ensure(code=Account.round_pool_code(round_code), kind=Account.Kind.ROUND_POOL)


def account_ensure_user_cash(*, user: User) -> Account:
    """The cash account every bettor has (its code is all callers need, so no `created`)."""
    account, _ = account_ensure(code=Account.user_cash_code(user.pk), kind=Account.Kind.USER_CASH, owner=user)
    return account


MANUAL_ADJUST = "ledger.manual_adjust"


def _manual_adjust_validate(*, acting_user: User | None, amount_u: int, direction: str, reason: str) -> None:
    if acting_user is not None:
        permission_require(acting_user, MANUAL_ADJUST, detail="You need the 'manual adjust' permission (finance).")
    amount_validate(amount_u)
    if direction not in ("credit", "debit"):
        raise InvalidAmount("Direction must be 'credit' or 'debit'.", code="invalid_direction")
    if not (reason or "").strip():
        raise ReasonRequired("A manual adjustment needs a reason.")


def ledger_manual_adjust(
    *,
    user: User,
    amount_u: int,
    direction: str,
    reason: str,
    acting_user: User | None,
    source: str,
    idempotency_key: str,
) -> Posted:
    """Finance staff credit or debit a user's cash against the house, with a reason. Audited.

    This is the one path that may take the house below zero (a goodwill credit
    larger than the fees earned so far). `acting_user` None is the shell (the `adjust` command).
    Four eyes: a person's adjustment above FOUR_EYES_THRESHOLD_U is refused here
    (`four_eyes_required`): `ledger_manual_adjust_request`, then another person's
    `ledger_manual_adjust_approve`.
    """
    _manual_adjust_validate(acting_user=acting_user, amount_u=amount_u, direction=direction, reason=reason)
    if amount_u > settings.FOUR_EYES_THRESHOLD_U and getattr(acting_user, "pk", None):
        raise FourEyesRequired(
            f"A manual {direction} above {settings.FOUR_EYES_THRESHOLD_U} u needs a second person: request it, "
            "then another finance user approves it."
        )
    return _manual_adjust_post(
        user=user,
        amount_u=amount_u,
        direction=direction,
        reason=reason,
        acting_user=acting_user,
        source=source,
        idempotency_key=idempotency_key,
    )


def ledger_manual_adjust_request(
    *, user: User, amount_u: int, direction: str, reason: str, acting_user: User | None, source: str
) -> tuple[ApprovalRequest, bool]:
    """Ask for a manual credit / debit another finance user must approve (any amount may be asked this way)."""
    _manual_adjust_validate(acting_user=acting_user, amount_u=amount_u, direction=direction, reason=reason)
    cash = account_ensure_user_cash(user=user).code
    return approval_request(
        kind=ApprovalRequest.Kind.LEDGER_ADJUST,
        target=cash,
        payload={"direction": direction, "amount_u": amount_u},
        reason=reason,
        actor=acting_user,
        source=source,
        subject_user=user,
    )


def ledger_manual_adjust_approve(*, request_id: Any, acting_user: User | None, source: str) -> Posted | None:
    """Another finance user approves: the batch posts in the same transaction (None while more approvals are due)."""
    with transaction.atomic():
        request = approval_grant(
            request_id=request_id,
            kind=ApprovalRequest.Kind.LEDGER_ADJUST,
            permission=MANUAL_ADJUST,
            actor=acting_user,
            source=source,
        )
        if request.status != ApprovalRequest.Status.APPROVED:
            return None
        assert request.subject_user is not None  # every adjustment request names its user
        return _manual_adjust_post(
            user=request.subject_user,
            amount_u=int(request.payload["amount_u"]),
            direction=request.payload["direction"],
            reason=approval_reason(request, acting_user),
            acting_user=acting_user,
            source=source,
            idempotency_key=f"approval:{request.pk}",
        )


def _manual_adjust_post(
    *,
    user: User,
    amount_u: int,
    direction: str,
    reason: str,
    acting_user: User | None,
    source: str,
    idempotency_key: str,
) -> Posted:
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
                action=AuditAction.LEDGER_MANUAL_CREDIT if direction == "credit" else AuditAction.LEDGER_MANUAL_DEBIT,
                source=source,
                actor=acting_user,
                object_type="account",
                object_id=cash,
                reason=reason,
                before={"balance_u": before},
                after={"balance_u": before + sign * amount_u, "batch": posted.batch.pk, "amount_u": amount_u},
            )
    return posted
