"""The only writer of ledger entries and cached balances.

Every movement of money is one balanced batch posted here, inside one database
transaction, under an idempotency key: the same key twice posts once.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

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
from common.money import format_usdc
from common.sql import row_sets, rows_insert
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


@dataclass
class Then:
    """One statement of the caller's own tables that ledger_post runs right after the batch's last move.

    `sql` holds one `{after}` in its WHERE clause, where the ledger puts the condition that orders it
    after that move; it returns at most one row, which the ledger puts in `row` (None: no row, or it
    did not run because the batch was a replay of its key: `ran` says which).
    """

    sql: str
    params: Sequence[Any]
    row: tuple[Any, ...] | None = None
    ran: bool = False


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
    """Claim the key: a new empty batch, or the earlier batch of the same request (created=False).

    One round trip when the key is new: INSERT … ON CONFLICT DO NOTHING RETURNING id. A twin that
    holds the key uncommitted makes it wait; if the twin commits, nothing is inserted and the
    earlier batch is read (another request under the key is IdempotencyConflict, 422).
    """
    created_by_id = acting_user.pk if acting_user is not None and acting_user.pk else None
    created_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LedgerBatch._meta.db_table} (idempotency_key, ref_type, ref_id, lines_digest, memo, "
            "created_by_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            [
                idempotency_key,
                ref_type,
                ref_id,
                digest,
                memo,
                LedgerBatch._meta.get_field("created_by").get_db_prep_value(created_by_id, connection),
                connection.ops.adapt_datetimefield_value(created_at),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return _batch_taken(idempotency_key, digest)
    return _batch_made(
        batch_id=row[0],
        idempotency_key=idempotency_key,
        ref_type=ref_type,
        ref_id=ref_id,
        digest=digest,
        memo=memo,
        created_by_id=created_by_id,
        created_at=created_at,
    )


def _batch_made(
    *,
    batch_id: int,
    idempotency_key: str,
    ref_type: str,
    ref_id: str,
    digest: str,
    memo: str,
    created_by_id: Any,
    created_at: Any,
) -> Posted:
    """The batch row this call inserted, as a loaded model (no query): Posted(created=True)."""
    batch = LedgerBatch(
        id=batch_id,
        idempotency_key=idempotency_key,
        ref_type=ref_type,
        ref_id=ref_id,
        lines_digest=digest,
        memo=memo,
        created_by_id=created_by_id,
        created_at=created_at,
    )
    batch._state.adding = False
    batch._state.db = connection.alias
    return Posted(batch=batch, created=True)


def _batch_taken(idempotency_key: str, digest: str) -> Posted:
    """The key's INSERT found it taken: the earlier batch of the same request (a replay), else 422."""
    earlier = _earlier_batch(idempotency_key, digest)
    if earlier is None:  # the twin that held the key rolled back between our statements
        raise IntegrityError(f"ledger batch key {idempotency_key!r} was taken and released; retry")
    return earlier


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
    last: str | None = None,
    savepoint: bool = True,
    then: Then | None = None,
) -> Posted:
    """Post one balanced batch. Locks the touched accounts in code order; refuses overdrafts.

    `last`: a hot account (a round's pool, which every bet of the round credits). Its row is locked
    and moved by the batch's last statement, after the other accounts, the batch and its entries,
    so concurrent batches queue on it for one round trip instead of the whole batch. A caller
    that writes a hot row of its own after this call keeps the same order everywhere.
    `savepoint=False` inside the caller's transaction saves two round trips (SAVEPOINT, RELEASE);
    then any refusal dooms that transaction, so only a caller that never catches inside it may
    ask (bet_place).
    `then` (Then): one statement of the caller's own tables to run right after the last move, in the
    same transaction: the round's pool raise of a bet, the other hot row, which then comes in the
    batch's own statement on PostgreSQL (one round trip holds both hot rows). It does not run for a
    replay of the key.
    """
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
    if last is not None and last not in net:
        raise ValueError(f"last={last!r} is not an account of the batch")
    try:
        with transaction.atomic(savepoint=savepoint):
            return _post(
                checked, net, ref_type, ref, idempotency_key, digest, acting_user, memo, allow_negative, last, then
            )
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
    last: str | None,
    then: Then | None,
) -> Posted:
    first = {code: delta_u for code, delta_u in net.items() if code != last}
    if last is not None and len(first) == 1 and connection.vendor == "postgresql":
        [(code, delta_u)] = first.items()
        return _post_one_statement(
            lines,
            code,
            delta_u,
            last,
            net[last],
            ref_type,
            ref_id,
            idempotency_key,
            digest,
            acting_user,
            memo,
            allow_negative,
            then,
        )
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
    if len(first) == 1:
        [(code, delta_u)] = first.items()
        _balance_move(code=code, delta_u=delta_u, allow_negative=allow_negative)  # lock, check, move: one trip
    elif first:
        _balances_move(first, allow_negative=allow_negative)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            account_id=line.account, amount_u=line.amount_u, ref_type=ref_type, ref_id=ref_id, batch=posted.batch
        )
        for line in lines
    )
    if last is not None:
        _balance_move(code=last, delta_u=net[last], allow_negative=allow_negative)
    if then is not None:
        with connection.cursor() as cursor:
            cursor.execute(then.sql.format(after=""), list(then.params))
            row = cursor.fetchone()
        then.row = None if row is None else tuple(row)
    return posted


def _post_one_statement(
    lines: list[Line],
    code: str,
    delta_u: int,
    last: str,
    last_delta_u: int,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    digest: str,
    acting_user: User | None,
    memo: str,
    allow_negative: frozenset[str],
    then: Then | None,
) -> Posted:
    """A batch of two accounts, the hot one `last` (a bet: cash -> pool), as one statement (PostgreSQL).

    The same four steps as the general path, chained in one WITH so each runs only if the one
    before it did: claim the key (the batch row), move `code` under the overdraft rule, insert the
    entries, move `last`. One round trip; the hot row is still moved last, so it is held for the
    rest of that statement and the commit. Nothing moved (key taken, overdraft, unknown account):
    the chain stops there, and the steps' own reads say why, as on the general path. The caller's
    `then` is the chain's last link (it runs only once `last` has moved); its row comes back with ours.
    """
    created_by_id = acting_user.pk if acting_user is not None and acting_user.pk else None
    created_at = timezone.now()
    guard, guard_params = _overdraft_guard_sql(delta_u=delta_u, allow_negative=allow_negative)
    last_guard, last_guard_params = _overdraft_guard_sql(delta_u=last_delta_u, allow_negative=allow_negative)
    batches, entries = LedgerBatch._meta.db_table, LedgerEntry._meta.db_table
    sql = (
        f"WITH batch AS (INSERT INTO {batches} (idempotency_key, ref_type, ref_id, lines_digest, memo, "  # noqa: S608
        "created_by_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), "
        f"moved AS (UPDATE {_ACCOUNTS} SET balance_u = balance_u + %s WHERE code = %s{guard} "
        "AND EXISTS (SELECT 1 FROM batch) RETURNING id), "
        f"entry AS (INSERT INTO {entries} (account, amount_u, ref_type, ref_id, batch, ts) "
        "SELECT line.account, line.amount_u, %s, %s, batch.id, %s FROM batch, moved, "
        "UNNEST(CAST(%s AS VARCHAR(100)[]), CAST(%s AS BIGINT[])) AS line (account, amount_u) RETURNING 1), "
        f"hot AS (UPDATE {_ACCOUNTS} SET balance_u = balance_u + %s WHERE code = %s{last_guard} "
        "AND EXISTS (SELECT 1 FROM entry) RETURNING id)"
    )
    if then is None:
        sql += " SELECT (SELECT id FROM batch), (SELECT COUNT(*) FROM moved), (SELECT COUNT(*) FROM hot)"
    else:
        sql += (
            f", then_ AS ({then.sql.format(after=' AND EXISTS (SELECT 1 FROM hot)')}) "
            "SELECT (SELECT id FROM batch), (SELECT COUNT(*) FROM moved), (SELECT COUNT(*) FROM hot), then_.* "
            "FROM (SELECT 1) AS one LEFT JOIN then_ ON TRUE"
        )
    at = connection.ops.adapt_datetimefield_value(created_at)
    params = [
        idempotency_key,
        ref_type,
        ref_id,
        digest,
        memo,
        LedgerBatch._meta.get_field("created_by").get_db_prep_value(created_by_id, connection),
        at,
        delta_u,
        code,
        *guard_params,
        ref_type,
        ref_id,
        at,
        [line.account for line in lines],
        [line.amount_u for line in lines],
        last_delta_u,
        last,
        *last_guard_params,
        *(then.params if then is not None else ()),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        batch_id, moved, hot, *then_row = cursor.fetchone()
    if batch_id is None:
        return _batch_taken(idempotency_key, digest)
    for account, delta, done in ((code, delta_u, moved), (last, last_delta_u, hot)):
        if not done:
            _refusal_raise(code=account, delta_u=delta, allow_negative=allow_negative)
    if then is not None:
        then.row = tuple(then_row) if any(value is not None for value in then_row) else None
    return _batch_made(
        batch_id=batch_id,
        idempotency_key=idempotency_key,
        ref_type=ref_type,
        ref_id=ref_id,
        digest=digest,
        memo=memo,
        created_by_id=created_by_id,
        created_at=created_at,
    )


@dataclass(frozen=True)
class Posting:
    """One batch of `ledger_post_many`: what `ledger_post` takes for one batch, as a value."""

    lines: Sequence[Line]
    ref_type: str
    ref_id: Any
    idempotency_key: str
    memo: str = ""


def ledger_post_many(
    postings: Iterable[Posting],
    *,
    acting_user: User | None = None,
    allow_negative: frozenset[str] = frozenset(),
    max_line_u: int | None = None,
) -> list[Posted]:
    """Post many balanced batches in a few statements, each still its own batch under its own key.

    For callers with thousands of small movements at once (seed's deposits): one INSERT of the
    batches (ON CONFLICT on the key), one read of the keys already taken, one lock of every touched
    account in code order, one INSERT of the entries, one UPDATE of the balances, however many
    postings (SQLite's parameter limit splits the INSERTs). The same rules as ledger_post, checked by
    the same functions: every posting balanced, every line within `max_line_u`, no overdraft outside
    `allow_negative` (applied posting by posting, in the order given), and each key posts once: a key
    already posted with the same request (the digest ledger_post computes, so either door replays the
    other) answers that batch with created=False; with another request, IdempotencyConflict and
    nothing is written. All or nothing: one transaction. One Posted per posting, in order.
    """
    checked: list[tuple[Posting, list[Line], dict[str, int], str, str]] = []
    for posting in postings:
        lines = _lines_of(posting.lines)
        for line in lines:
            _line_amount_check(line.amount_u, max_line_u=max_line_u)
        _balanced_check(count=len(lines), total=sum(line.amount_u for line in lines))
        net: dict[str, int] = defaultdict(int)
        for line in lines:
            net[line.account] += line.amount_u
        ref = str(posting.ref_id)
        digest = request_digest(
            {"ref": [posting.ref_type, ref], "lines": sorted((line.account, line.amount_u) for line in lines)}
        )
        checked.append((posting, lines, dict(net), ref, digest))
    if not checked:
        return []
    created_by_id = acting_user.pk if acting_user is not None and acting_user.pk else None
    created_at = timezone.now()
    with transaction.atomic():
        first_of_key: dict[str, int] = {}  # a key given twice in one call: the second is a replay of the first
        fresh: list[int] = []
        for index, (posting, _, _, _, digest) in enumerate(checked):
            earlier_index = first_of_key.setdefault(posting.idempotency_key, index)
            if earlier_index != index:
                replay_check(
                    key=posting.idempotency_key, stored_digest=checked[earlier_index][4], digest=digest, what="movement"
                )
            else:
                fresh.append(index)
        batch_ids = _batches_insert(
            [checked[index] for index in fresh], created_by_id=created_by_id, created_at=created_at
        )
        posted: dict[str, Posted] = {}
        taken = [checked[index] for index in fresh if checked[index][0].idempotency_key not in batch_ids]
        if taken:
            earlier = {
                batch.idempotency_key: batch
                for batch in LedgerBatch.objects.filter(idempotency_key__in=[item[0].idempotency_key for item in taken])
            }
            for posting, _, _, _, digest in taken:
                batch = earlier.get(posting.idempotency_key)
                if batch is None:  # the twin that held the key rolled back between our two statements
                    raise IntegrityError(f"ledger batch key {posting.idempotency_key!r} was taken and released; retry")
                replay_check(
                    key=posting.idempotency_key, stored_digest=batch.lines_digest, digest=digest, what="movement"
                )
                posted[posting.idempotency_key] = Posted(batch=batch, created=False)
        made = [checked[index] for index in fresh if checked[index][0].idempotency_key in batch_ids]
        for posting, _, _, ref, digest in made:
            batch = LedgerBatch(
                id=batch_ids[posting.idempotency_key],
                idempotency_key=posting.idempotency_key,
                ref_type=posting.ref_type,
                ref_id=ref,
                lines_digest=digest,
                memo=posting.memo,
                created_by_id=created_by_id,
                created_at=created_at,
            )
            batch._state.adding = False
            batch._state.db = connection.alias
            posted[posting.idempotency_key] = Posted(batch=batch, created=True)
        if made:
            _balances_move_many([net for _, _, net, _, _ in made], allow_negative=allow_negative)
            _entries_insert(
                [
                    (line.account, line.amount_u, posting.ref_type, ref, batch_ids[posting.idempotency_key])
                    for posting, lines, _, ref, _ in made
                    for line in lines
                ],
                ts=created_at,
            )
    answers = []
    for index, (posting, *_rest) in enumerate(checked):
        answer = posted[posting.idempotency_key]
        if first_of_key[posting.idempotency_key] != index:
            answer = Posted(batch=answer.batch, created=False)
        answers.append(answer)
    return answers


def _batches_insert(
    items: list[tuple[Posting, list[Line], dict[str, int], str, str]], *, created_by_id: Any, created_at: Any
) -> dict[str, int]:
    """Claim the keys: INSERT … ON CONFLICT DO NOTHING RETURNING, all rows in one statement (SQLite: as its
    parameter limit allows). {key: new batch id} for the keys this call took (a key already posted, or held
    by a twin that commits, is not among them)."""
    returned = rows_insert(
        LedgerBatch,
        ["idempotency_key", "ref_type", "ref_id", "lines_digest", "memo", "created_by", "created_at"],
        [
            (posting.idempotency_key, posting.ref_type, ref, digest, posting.memo, created_by_id, created_at)
            for posting, _, _, ref, digest in items
        ],
        suffix="ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
    )
    return {key: batch_id for batch_id, key in returned}


def _balances_move_many(nets: list[dict[str, int]], *, allow_negative: frozenset[str]) -> None:
    """The accounts of many batches: locked once in code order, the overdraft rule applied batch by batch
    in the given order (as that many ledger_post calls would), every balance moved in one UPDATE."""
    codes = sorted({code for net in nets for code in net})
    accounts = {
        code: (kind, balance_u)
        for code, kind, balance_u in Account.objects.select_for_update(no_key=True)
        .filter(code__in=codes)
        .order_by("code")
        .values_list("code", "kind", "balance_u")
    }
    for code in codes:
        if code not in accounts:
            raise UnknownAccount(f"No ledger account {code!r}.", account=code)
    balances = {code: balance_u for code, (_, balance_u) in accounts.items()}
    for net in nets:
        for code, delta_u in net.items():
            _overdraft_check(
                code=code,
                kind=accounts[code][0],
                balance_u=balances[code],
                delta_u=delta_u,
                allow_negative=allow_negative,
            )
            balances[code] += delta_u
    moved = [(code, balances[code] - accounts[code][1]) for code in codes if balances[code] != accounts[code][1]]
    with connection.cursor() as cursor:
        for rows_sql, params in row_sets(("text", "bigint"), moved):
            cursor.execute(
                f"WITH moved (code, delta_u) AS ({rows_sql}) UPDATE {_ACCOUNTS} "
                f"SET balance_u = {_ACCOUNTS}.balance_u + moved.delta_u FROM moved WHERE {_ACCOUNTS}.code = moved.code",
                params,
            )


def _entries_insert(rows: list[tuple[str, int, str, str, int]], *, ts: Any) -> None:
    """(account, amount_u, ref_type, ref_id, batch id) rows: one INSERT (SQLite: as its parameter limit allows)."""
    rows_insert(LedgerEntry, ["account", "amount_u", "ref_type", "ref_id", "batch", "ts"], [(*row, ts) for row in rows])


def _balances_move(net: dict[str, int], *, allow_negative: frozenset[str]) -> None:
    """Several accounts: lock them in code order (two batches never wait on each other crosswise),
    check each against the overdraft rule, then move every balance in one UPDATE."""
    # FOR NO KEY UPDATE: does not block the FK checks (KEY SHARE) of concurrent entry inserts.
    accounts = {
        account.code: account
        for account in Account.objects.select_for_update(no_key=True).filter(code__in=list(net)).order_by("code")
    }
    for code in net:
        if code not in accounts:
            raise UnknownAccount(f"No ledger account {code!r}.", account=code)
    for code, delta_u in net.items():
        account = accounts[code]
        _overdraft_check(
            code=code, kind=account.kind, balance_u=account.balance_u, delta_u=delta_u, allow_negative=allow_negative
        )
    Account.objects.filter(code__in=list(net)).update(
        balance_u=F("balance_u")
        + Case(*(When(code=code, then=Value(delta)) for code, delta in net.items()), output_field=BigIntegerField())
    )


_ACCOUNTS = Account._meta.db_table


def _balance_move(*, code: str, delta_u: int, allow_negative: frozenset[str]) -> None:
    """One account: lock its row, apply the overdraft rule and move its balance in one UPDATE.

    The WHERE clause lets through what _overdraft_check lets through (a credit; a balance that
    stays >= 0; a world account; an account in `allow_negative`; the check constraint on the
    table says the same for users, pools and pending), so the success path is one
    round trip. No row: the refusal path reads the account and lets _overdraft_check (or
    UnknownAccount) say why, so the rule's words stay in one place.
    """
    guard, guard_params = _overdraft_guard_sql(delta_u=delta_u, allow_negative=allow_negative)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_ACCOUNTS} SET balance_u = balance_u + %s WHERE code = %s{guard} RETURNING id",
            [delta_u, code, *guard_params],
        )
        if cursor.fetchone() is not None:
            return
    _refusal_raise(code=code, delta_u=delta_u, allow_negative=allow_negative)


def _overdraft_guard_sql(*, delta_u: int, allow_negative: frozenset[str]) -> tuple[str, list[Any]]:
    """The overdraft rule as the WHERE clause of a balance UPDATE (what _overdraft_check lets through)."""
    if delta_u >= 0:  # only money going out can overdraw
        return "", []
    allowed = sorted(allow_negative)
    sql = " AND (balance_u + %s >= 0 OR kind = %s" + "".join(" OR code = %s" for _ in allowed) + ")"
    return sql, [delta_u, Account.Kind.EXTERNAL.value, *allowed]


def _refusal_raise(*, code: str, delta_u: int, allow_negative: frozenset[str]) -> NoReturn:
    """A balance UPDATE found no row: read the account and say why (UnknownAccount, InsufficientFunds)."""
    account = Account.objects.filter(code=code).only("kind", "balance_u").first()
    if account is None:
        raise UnknownAccount(f"No ledger account {code!r}.", account=code)
    _overdraft_check(
        code=code, kind=account.kind, balance_u=account.balance_u, delta_u=delta_u, allow_negative=allow_negative
    )
    raise AssertionError(f"the overdraft rule and its SQL disagree on {code}")  # pragma: no cover


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
            # The lines' SELECT runs once: into the entries. Then one statement locks the accounts they
            # touch in code order (PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers)
            # and reads back what the rules check: count, sum, smallest and largest line, accounts.
            cursor.execute(
                "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
                f"SELECT lines.account, lines.amount_u, %s, %s, %s, %s FROM ({sql}) lines "
                "WHERE lines.amount_u <> 0",
                [ref_type, ref_id, batch_id, timezone.now(), *all_params],
            )
            lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
            cursor.execute(
                "WITH lines AS (SELECT account, amount_u FROM ledger_entries WHERE batch = %s), "
                "locked AS (SELECT code FROM ledger_accounts WHERE code IN (SELECT account FROM lines) "
                f"ORDER BY code{lock}) "
                "SELECT (SELECT COUNT(*) FROM lines), (SELECT COALESCE(SUM(amount_u), 0) FROM lines), "
                "(SELECT MIN(amount_u) FROM lines), (SELECT MAX(amount_u) FROM lines), "
                "(SELECT COUNT(DISTINCT account) FROM lines), (SELECT COUNT(*) FROM locked)",
                [batch_id],
            )
            count, total, smallest_u, largest_u, accounts, found = cursor.fetchone()
            if count:
                _line_amount_check(int(smallest_u), max_line_u=max_line_u)
                _line_amount_check(int(largest_u), max_line_u=max_line_u)
            _balanced_check(count=count, total=int(total))
            if found < accounts:
                cursor.execute(
                    "SELECT e.account FROM ledger_entries e LEFT JOIN ledger_accounts a ON a.code = e.account "
                    "WHERE e.batch = %s AND a.id IS NULL ORDER BY e.account LIMIT 1",
                    [batch_id],
                )
                missing = cursor.fetchone()[0]
                raise UnknownAccount(f"No ledger account {missing!r}.", account=missing)
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


def account_lock(*, code: str) -> int | None:
    """Lock an account's row now, inside the caller's transaction (the row `ledger_post` locks anyway):
    its balance, or None when there is no such account.

    A caller whose rule spans several requests of one user (a daily withdrawal limit) takes the
    user's cash row first, so those requests queue here instead of
    racing past the rule. One round trip.
    """
    with connection.cursor() as cursor:
        lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
        cursor.execute(f"SELECT balance_u FROM {_ACCOUNTS} WHERE code = %s{lock}", [code])
        row = cursor.fetchone()
    return None if row is None else row[0]


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


def accounts_ensure_user_cash(*, user_ids: Sequence[Any]) -> list[str]:
    """The cash accounts of many users at once (seed), the missing ones made in one INSERT (one that
    another process makes meanwhile is left as it is). Their codes, in the order of `user_ids`."""
    codes = [Account.user_cash_code(user_id) for user_id in user_ids]
    have = set(Account.objects.filter(code__in=codes).values_list("code", flat=True)) if codes else set()
    now = timezone.now()
    rows_insert(
        Account,
        ["code", "kind", "owner", "balance_u", "created_at"],
        [
            (code, Account.Kind.USER_CASH.value, user_id, 0, now)
            for code, user_id in zip(codes, user_ids, strict=True)
            if code not in have
        ],
        suffix="ON CONFLICT (code) DO NOTHING",
    )
    return codes


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
            f"A manual {direction} above {format_usdc(settings.FOUR_EYES_THRESHOLD_U)} needs a second person: "
            "request it, then another finance user approves it."
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
