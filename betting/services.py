import dataclasses
import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework.authtoken.models import Token

from audit.events import AuditAction
from audit.services import audit_record
from betting.exceptions import InvalidSide
from betting.models import Bet, BettorRoundTotal, User
from betting.selectors import bet_by_idempotency_key
from common.errors import ApplicationError, Conflict, InvalidInput, permission_require
from common.idempotency import idempotency_key_validate, replay_check, request_digest
from common.sql import rows_insert
from ledger.exceptions import InsufficientFunds, UnknownAccount
from ledger.selectors import account_code_round_pool, account_code_user_cash
from ledger.services import (
    Line,
    Then,
    account_ensure_user_cash,
    accounts_ensure_user_cash,
    amount_validate,
    ledger_post,
)
from ops.counters import event_count_add
from ops.exceptions import halt_refusal
from ops.selectors import betting_halt
from risk.checks import (
    BetAttempt,
    UserTotals,
    bet_pool_check,
    bet_stake_check,
    bet_user_check,
    market_day_start,
    needs_user_totals,
)
from rounds.selectors import round_code_parse
from rounds.services import (
    round_bet_admit,
    round_bet_admit_sql,
    round_bet_admitted,
    round_pool_raise_sql,
    round_pool_raised,
)

if TYPE_CHECKING:
    from rounds.models import Round

logger = logging.getLogger(__name__)


def user_create(
    *,
    email: str,
    password: str | None = None,
    is_staff: bool = False,
    can_log_in: bool = True,
    password_hash: str | None = None,
) -> User:
    """A bettor (or staff user) with the cash account every bettor has.

    `can_log_in=False` (synthetic bettors of `simulate`, who use API tokens only): an unusable password,
    so no password hash is computed. `password_hash`: an already hashed password (make_password), for
    callers creating many users with one password (seed hashes it once).
    """
    email = (email or "").strip().lower()
    taken = Conflict(f"A user with email {email!r} already exists.", code="email_taken")
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise taken
        try:
            with transaction.atomic():
                if password_hash is None and not can_log_in:
                    password_hash = "!"  # unusable: no hash computed
                if password_hash is not None:
                    user = User(email=User.objects.normalize_email(email), is_staff=is_staff, password=password_hash)
                    user.save()
                else:
                    user = User.objects.create_user(
                        email=email, password=password or secrets.token_urlsafe(12), is_staff=is_staff
                    )
        except IntegrityError as exc:  # a concurrent user_create of this email won the unique index
            raise taken from exc
        account_ensure_user_cash(user=user)
    return user


def users_create_many(*, emails: Sequence[str], password_hashes: Sequence[str], is_staff: bool = False) -> list[User]:
    """Many bettors at once (seed), each with its cash account: one INSERT of the users, one of the accounts.

    `password_hashes`: one per email, already hashed (make_password; seed hashes a shared password
    once) or unusable ("!"). An email already taken (an earlier seed, or one running beside this one)
    is skipped, not an error: the users made, in the order of `emails`.
    """
    if len(emails) != len(password_hashes):
        raise ValueError("users_create_many needs one password hash per email")
    joined = timezone.now()
    wanted = [
        User(
            id=uuid.uuid4(),
            email=User.objects.normalize_email((email or "").strip().lower()),
            password=hashed,
            is_staff=is_staff,
            date_joined=joined,
        )
        for email, hashed in zip(emails, password_hashes, strict=True)
    ]
    if not wanted:
        return []
    with transaction.atomic():
        # Taken in any case (user_create's rule: email__iexact), then, for one made meanwhile, the unique index.
        taken = set(
            User.objects.annotate(lowered=Lower("email"))
            .filter(lowered__in=[u.email for u in wanted])
            .values_list("lowered", flat=True)
        )
        made_ids = rows_insert(
            User,
            ["id", "password", "last_login", "is_superuser", "email", "is_staff", "is_active", "date_joined"],
            [
                (u.pk, u.password, None, False, u.email, u.is_staff, True, joined)
                for u in wanted
                if u.email not in taken
            ],
            suffix="ON CONFLICT DO NOTHING RETURNING id",
        )
        ours = {User._meta.pk.to_python(pk) for (pk,) in made_ids}
        made = [user for user in wanted if user.pk in ours]
        for user in made:
            user._state.adding = False
            user._state.db = connection.alias
        accounts_ensure_user_cash(user_ids=[user.pk for user in made])
    return made


def user_api_token(*, user: User) -> str:
    """The user's API token (made on first use): what `drf_create_token` and the token endpoint give out."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


# --- Placing a bet: the hot path -------------------------------------------------------------


def bet_request_digest(*, side: str, stake_u: int, round_code: str | None, user_id: Any = None) -> str:
    """What "the same request" means for an Idempotency-Key: same side, stake, round field and bettor."""
    return request_digest(
        {"side": side, "stake_u": stake_u, "round": round_code, "user_id": str(user_id) if user_id else None}
    )


PLACE_BET_ON_BEHALF = "betting.place_bet_on_behalf"


def bet_on_behalf_authorize(*, acting_user: User) -> None:
    """May `acting_user` stake another user's cash? Only a staff user with the operator's permission.

    `is_staff` alone is not enough: the read-only auditor and finance are staff too. The API
    calls this before it looks the user up (so a refused caller learns nothing about user ids);
    `bet_place` calls it again, so every door answers the same.
    """
    permission_require(
        acting_user,
        PLACE_BET_ON_BEHALF,
        detail="Placing a bet on behalf of another user needs the 'place bet on behalf' permission.",
    )


def bet_place(
    *,
    user: User,
    side: str,
    stake_u: int,
    round_code: str | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    source: str = "api",
    acting_user: User | None = None,
) -> tuple[Bet, bool]:
    """Stake `stake_u` on `side` of a round (default: the current open round). Returns (bet, created).

    Rules: side UP|DOWN; no emergency stop / circuit breaker; the round OPEN *and* now < lock_at
    on the clock (a late lock task does not keep betting open); every risk limit (risk.checks, with
    per-user overrides), each where its numbers are exact: self-exclusion and the minimum and maximum
    stake before the transaction (no query), the user's round and daily totals under the bettor's
    row lock, the round pool cap and the side imbalance cap under the round row lock, last.

    Concurrency: one transaction, in two steps (with a daily limit, the bettor's user row is first
    locked and their day summed: _user_day_total_u). (1) _bet_record: rounds.services.round_bet_admit,
    the round's door (a SELECT … FOR KEY SHARE of the round, OPEN and lock_at > now, that every bet
    holds at once and that makes round_lock / round_settle wait for the bets in flight), the upsert of
    the bettor's bet_totals row for the round (it locks the row, so their bets of the round queue
    there and each sees the totals its stake made), held to the per-user limits, and the bet row:
    one statement on PostgreSQL. (2) The ledger batch (user cash -> round pool; refuses an
    overdraft), which moves the hot pool account last and then, as its `then`, the other hot row:
    rounds.services.round_pool_raise_sql, a conditional UPDATE of the round that re-checks OPEN and
    the clock and returns the pools, which risk.checks.bet_pool_check holds to the pool and side caps
    while the row is locked. On PostgreSQL that is one statement too, so the two hot rows are held
    for its last part and the commit, not the whole transaction: bets of one round queue only there.
    Any refusal rolls the whole transaction back: nothing written.

    Idempotency (per user): the same key with the same request returns the first bet
    (created=False); the same key with a different request is IdempotencyConflict (422).
    A *refused* request writes nothing, so it does not consume its key: retrying the same
    key after the cause is fixed (e.g. a deposit after insufficient_funds) is a new attempt.
    Concurrent twins: the unique (user, idempotency_key) index lets one win; the others
    roll back and answer with the winner's bet.

    Round trips on success (PostgreSQL): halt check 1 (none behind the API: the request read the switches);
    then BEGIN, the round's admission with the bet and its totals 1 (+ 2 before it with a daily limit),
    ledger_post 1 (batch, user cash, entries, the pool account and the round's pool UPDATE), COMMIT.

    Every refusal, whichever door sent the bet (API, admin, command), adds one to the per-minute
    `bet_rejected` count the circuit breaker reads, after the refused transaction has rolled
    back (so the count survives it). A replay or a success is not counted.
    """
    try:
        return _bet_place(
            user=user,
            side=side,
            stake_u=stake_u,
            round_code=round_code,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            source=source,
            acting_user=acting_user,
        )
    except ApplicationError:
        _rejection_count()
        raise


def _rejection_count() -> None:
    try:
        with transaction.atomic():  # a savepoint if the caller holds a transaction: its failure stays here
            event_count_add(name="bet_rejected")
    except Exception:  # noqa: BLE001 - counting must never change the bettor's answer
        logger.exception("could not count a rejected bet for the circuit breaker")


def _bet_place(
    *,
    user: User,
    side: str,
    stake_u: int,
    round_code: str | None,
    idempotency_key: str | None,
    request_digest: str | None,
    source: str,
    acting_user: User | None,
) -> tuple[Bet, bool]:
    side = _side_validate(side)
    stake_u = _stake_validate(stake_u)
    if round_code is not None:
        round_code = str(round_code).strip()
        round_code_parse(code=round_code)  # malformed -> 400 invalid_round_code, before any query
    if idempotency_key is not None:
        idempotency_key = idempotency_key_validate(idempotency_key)
    if acting_user is not None and acting_user.pk != user.pk:
        bet_on_behalf_authorize(acting_user=acting_user)
    if request_digest is None:
        request_digest = bet_request_digest(side=side, stake_u=stake_u, round_code=round_code)
    try:
        halt = betting_halt()
        if halt is not None:
            raise halt_refusal(code=halt.code, detail=f"Betting is halted ({halt.code}): {halt.reason}")
        bet = _bet_insert(
            user=user,
            side=side,
            stake_u=stake_u,
            round_code=round_code,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            source=source,
            acting_user=acting_user,
        )
        return bet, True
    except IntegrityError:
        # A twin with the same key committed first (the unique index refused our insert and
        # our transaction rolled back): answer with its bet, or with the conflict.
        replayed = _bet_replayed(user=user, idempotency_key=idempotency_key, request_digest=request_digest)
        if replayed is None:
            raise
        return replayed, False
    except ApplicationError:
        # A replay of a bet that went through must get that bet back even if the round has
        # locked or betting is halted since; only a never-accepted key sees the refusal.
        replayed = _bet_replayed(user=user, idempotency_key=idempotency_key, request_digest=request_digest)
        if replayed is None:
            raise
        return replayed, False


def _side_validate(side: Any) -> str:
    if side not in Bet.Side.values:
        raise InvalidSide(f"side must be one of {', '.join(Bet.Side.values)}, got {side!r}.")
    return side


def _stake_validate(stake_u: Any) -> int:
    # Only the amount's shape here; its limits (minimum, maximum, ...) are risk.checks.bet_stake_check's.
    return amount_validate(stake_u, field="stake_u")


def _bet_replayed(*, user: User, idempotency_key: str | None, request_digest: str) -> Bet | None:
    if idempotency_key is None:
        return None
    bet = bet_by_idempotency_key(user_id=user.pk, idempotency_key=idempotency_key)
    if bet is not None:
        replay_check(key=idempotency_key, stored_digest=bet.request_digest, digest=request_digest, what="bet")
    return bet


def _bet_insert(
    *,
    user: User,
    side: str,
    stake_u: int,
    round_code: str | None,
    idempotency_key: str | None,
    request_digest: str,
    source: str,
    acting_user: User | None,
) -> Bet:
    now = timezone.now()
    # 0. The stake alone: self-exclusion, minimum and maximum stake (the limits are in memory: no query).
    limits = bet_stake_check(user_id=user.pk, stake_u=stake_u, now=now)
    cash = account_code_user_cash(user_id=user.pk)
    with transaction.atomic():
        # 1. The daily total first, if a daily limit applies: the bettor's user row locked, their day summed.
        day_u = _user_day_total_u(user_id=user.pk, now=now) if limits.max_user_day_u is not None else 0
        # 2. The round admits the bet (OPEN and before lock_at, or refused: round_not_open, betting_closed, ...;
        #    a shared lock), and the bet row with the bettor's running totals in the round: their totals row
        #    is their lock in the round, so their bets queue there.
        round_, bet, up_u, down_u = _bet_record(
            round_code=round_code,
            user_id=user.pk,
            side=side,
            stake_u=stake_u,
            now=now,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
        )
        code = round_.code
        attempt = BetAttempt(user_id=user.pk, round_code=code, side=side, stake_u=stake_u, now=now)
        round_u = up_u + down_u
        if needs_user_totals(limits):
            bet_user_check(limits, attempt, UserTotals(round_u=round_u, day_u=day_u + stake_u))
        if acting_user is not None and acting_user.pk != user.pk:
            audit_record(
                action=AuditAction.BET_PLACE_ON_BEHALF,
                source=source,
                actor=acting_user,
                object_type="bet",
                object_id=bet.pk,
                after={"user": str(user.pk), "round": code, "side": side, "stake_u": stake_u},
            )
        # 3. The ledger batch (cash -> pool; refuses an overdraft) and, last, the round's pool: the two hot
        #    rows every bet of the round writes. The batch moves the pool account last, then runs the round's
        #    conditional pool raise (it re-checks OPEN and the clock) in the same statement on PostgreSQL,
        #    so both are held for that one round trip and the commit. Under the round row lock, the pools
        #    this stake included are held to the pool and side caps.
        pool = account_code_round_pool(round_code=code)
        raise_pool = Then(
            *round_pool_raise_sql(
                round_code=code,
                side=side,
                stake_u=stake_u,
                now=now,
                bettor_new=round_u == stake_u,  # stakes are positive: the totals are this stake alone
                bettor_side_u=up_u if side == Bet.Side.UP else down_u,
                bettor_total_u=round_u,
            )
        )
        try:
            ledger_post(
                [Line(cash, -stake_u), Line(pool, stake_u)],
                ref_type="bet",
                ref_id=bet.pk,
                idempotency_key=f"bet:{bet.pk}",
                acting_user=acting_user,
                last=pool,
                savepoint=False,  # a refusal rolls the whole bet back: nothing below queries after one
                then=raise_pool,
            )
        except UnknownAccount as exc:
            if exc.extra.get("account") != cash:
                raise
            raise InsufficientFunds(
                f"Insufficient funds in {cash}: no cash account yet.", account=cash, balance_u=0
            ) from None
        pools = round_pool_raised(row=raise_pool.row, round_code=code, now=now)
        bet_pool_check(limits, dataclasses.replace(attempt, up_pool_u=pools.up_pool_u, down_pool_u=pools.down_pool_u))
    return bet


def _user_day_total_u(*, user_id: Any, now: datetime) -> int:
    """The bettor's stakes since midnight America/New_York, read under their user row lock (daily limit only).

    Two statements: the first locks the bettor's user row (FOR NO KEY UPDATE: it does not block the
    bets' foreign-key checks), so their bets queue there, whichever round or door; the second, run
    once the lock is held, sums their day. They cannot be one: a statement that waited for the lock
    still reads its sums from the snapshot taken before the wait (PostgreSQL re-checks only the
    locked row), and would miss the bet that held it.
    """
    table, bets = User._meta.db_table, Bet._meta.db_table
    db_user_id = User._meta.pk.get_db_prep_value(user_id, connection)
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    since = connection.ops.adapt_datetimefield_value(market_day_start(now))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s{lock}", [db_user_id])  # noqa: S608 - table names only
        if cursor.fetchone() is None:
            raise InvalidInput(f"No user {user_id}.", code="unknown_user")
        cursor.execute(
            f"SELECT COALESCE(SUM(stake_u), 0) FROM {bets} WHERE user_id = %s AND created_at >= %s",  # noqa: S608
            [db_user_id, since],
        )
        return int(cursor.fetchone()[0])


_TOTALS, _BETS = BettorRoundTotal._meta.db_table, Bet._meta.db_table
_TOTAL_ADD = (
    "ON CONFLICT (round_id, user_id) DO UPDATE SET "
    f"up_u = {_TOTALS}.up_u + excluded.up_u, down_u = {_TOTALS}.down_u + excluded.down_u RETURNING up_u, down_u"
)
_BET_COLUMNS = "round_id, user_id, side, stake_u, status, payout_u, idempotency_key, request_digest, created_at"


def _bet_record(
    *,
    round_code: str | None,
    user_id: Any,
    side: str,
    stake_u: int,
    now: datetime,
    idempotency_key: str | None,
    request_digest: str,
) -> tuple["Round", Bet, int, int]:
    """The round's admission, the bet row, and the bettor's running totals in that round with it:
    (round, bet, up_u, down_u), this stake included.

    The round: rounds.services.round_bet_admit (a SELECT … FOR KEY SHARE: OPEN and before lock_at,
    else its refusal). The totals row (bet_totals, one per round and bettor) is an upsert that adds
    the stake: it locks the row, so the bettor's bets of the round queue on it, and each reads the
    totals its own stake made (an ON CONFLICT update works on the newest row, never a stale
    snapshot). On PostgreSQL the three are one statement (one round trip); SQLite runs them one
    after the other. A twin of the same Idempotency-Key fails the INSERT (IntegrityError: bet_place
    replays).
    """
    db_user_id = User._meta.pk.get_db_prep_value(user_id, connection)
    up_u, down_u = (stake_u, 0) if side == Bet.Side.UP else (0, stake_u)
    bet_values: list[Any] = [side, stake_u, Bet.Status.PLACED.value, idempotency_key, request_digest]
    created_at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            admit_sql, admit_params = round_bet_admit_sql(round_code=round_code, now=now)
            cursor.execute(
                f"WITH admitted AS ({admit_sql}), "  # noqa: S608 - table names only
                f"total AS (INSERT INTO {_TOTALS} (round_id, user_id, up_u, down_u) "
                f"SELECT id, %s, %s, %s FROM admitted {_TOTAL_ADD}), "
                f"placed AS (INSERT INTO {_BETS} ({_BET_COLUMNS}) "
                "SELECT id, %s, %s, %s, %s, 0, %s, %s, %s FROM admitted RETURNING id) "
                "SELECT admitted.id, admitted.code, placed.id, total.up_u, total.down_u FROM admitted, total, placed",
                [*admit_params, db_user_id, up_u, down_u, db_user_id, *bet_values, created_at],
            )
            row = cursor.fetchone()
            round_ = round_bet_admitted(row=row[:2] if row else None, round_code=round_code, now=now)
            bet_id, up_u, down_u = row[2:]
        else:
            round_ = round_bet_admit(round_code=round_code, now=now)
            cursor.execute(
                f"INSERT INTO {_TOTALS} (round_id, user_id, up_u, down_u) VALUES (%s, %s, %s, %s) {_TOTAL_ADD}",  # noqa: S608
                [round_.pk, db_user_id, up_u, down_u],
            )
            up_u, down_u = cursor.fetchone()
            cursor.execute(
                f"INSERT INTO {_BETS} ({_BET_COLUMNS}) VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s) RETURNING id",  # noqa: S608
                [round_.pk, db_user_id, *bet_values, created_at],
            )
            (bet_id,) = cursor.fetchone()
    bet = Bet(
        id=bet_id,
        round=round_,
        user_id=user_id,
        side=side,
        stake_u=stake_u,
        status=Bet.Status.PLACED,
        payout_u=0,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        created_at=now,
    )
    bet._state.adding = False
    bet._state.db = connection.alias
    return round_, bet, int(up_u), int(down_u)
