import hashlib
import json
import re
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from audit.services import audit_record
from betting.exceptions import (
    ActingForbidden,
    BettingClosed,
    BettingHalted,
    IdempotencyConflict,
    InvalidIdempotencyKey,
    InvalidSide,
    NoCurrentRound,
    RoundNotOpen,
    RoundStakeLimitExceeded,
    StakeTooLarge,
    StakeTooSmall,
)
from betting.models import Bet, User
from betting.selectors import bet_by_idempotency_key
from common.errors import ApplicationError, Conflict
from ledger.exceptions import InsufficientFunds, UnknownAccount
from ledger.models import Account
from ledger.services import Line, account_ensure_user_cash, amount_validate, ledger_post
from ops.selectors import betting_halt
from rounds.models import Round
from rounds.selectors import round_code_parse, round_current, round_get


def user_create(*, email: str, password: str | None = None, is_staff: bool = False) -> User:
    """A bettor (or staff user) with the cash account every bettor has."""
    email = (email or "").strip().lower()
    taken = Conflict(f"A user with email {email!r} already exists.", code="email_taken")
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise taken
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email=email, password=password or secrets.token_urlsafe(12), is_staff=is_staff
                )
        except IntegrityError as exc:  # a concurrent user_create of this email won the unique index
            raise taken from exc
        account_ensure_user_cash(user=user)
    return user


# --- Placing a bet: the hot path -------------------------------------------------------------

_POOL_COLUMN = {Bet.Side.UP: "up_pool_u", Bet.Side.DOWN: "down_pool_u"}
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces, fits the column


def bet_request_digest(*, side: str, stake_u: int, round_code: str | None, user_id: Any = None) -> str:
    """What "the same request" means for an Idempotency-Key: same side, stake, round field and bettor."""
    payload = {"side": side, "stake_u": stake_u, "round": round_code, "user_id": str(user_id) if user_id else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


PLACE_BET_ON_BEHALF = "betting.place_bet_on_behalf"


def bet_on_behalf_authorize(*, acting_user: Any) -> None:
    """May `acting_user` stake another user's cash? Only a staff user with the operator's permission.

    `is_staff` alone is not enough: the read-only auditor and finance are staff too. The API
    calls this before it looks the user up (so a refused caller learns nothing about user ids);
    `bet_place` calls it again, so every door answers the same.
    """
    if not (getattr(acting_user, "is_staff", False) and acting_user.has_perm(PLACE_BET_ON_BEHALF)):
        raise ActingForbidden("Placing a bet on behalf of another user needs the 'place bet on behalf' permission.")


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

    Rules: side UP|DOWN; BET_MIN_STAKE_U <= stake <= BET_MAX_STAKE_U; the user's total in
    the round <= BET_MAX_USER_ROUND_STAKE_U; no emergency stop / circuit breaker; the round
    OPEN *and* now < lock_at on the clock (a late lock task does not keep betting open).

    Concurrency: one transaction whose first statement is a conditional UPDATE of the
    round row (status OPEN and lock_at > now) that also raises the side's pool. That
    statement both checks the state and takes the round row lock, so a bet racing
    round_lock is either wholly in or refused. Then the bet row, the per-user limit and
    the ledger batch (user cash -> round pool; it locks the accounts in code order and
    refuses an overdraft). Any refusal rolls the whole transaction back: nothing written.

    Idempotency (per user): the same key with the same request returns the first bet
    (created=False); the same key with a different request is IdempotencyConflict (422).
    A *refused* request writes nothing, so it does not consume its key: retrying the same
    key after the cause is fixed (e.g. a deposit after insufficient_funds) is a new attempt.
    Concurrent twins: the unique (user, idempotency_key) index lets one win; the others
    roll back and answer with the winner's bet.

    Round trips on success: halt check 1, round UPDATE 1, bet INSERT 1, limit SUM 1,
    ledger_post 7 (savepoint, key check, batch, account lock, entries, balances, release).
    """
    side = _side_validate(side)
    stake_u = _stake_validate(stake_u)
    if round_code is not None:
        round_code = str(round_code).strip()
        round_code_parse(code=round_code)  # malformed -> 400 invalid_round_code, before any query
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(str(idempotency_key)):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 128 printable ASCII characters without spaces.")
    if acting_user is not None and acting_user.pk != user.pk:
        bet_on_behalf_authorize(acting_user=acting_user)
    if request_digest is None:
        request_digest = bet_request_digest(side=side, stake_u=stake_u, round_code=round_code)
    try:
        halt = betting_halt()
        if halt is not None:
            raise BettingHalted(f"Betting is halted ({halt.code}): {halt.reason}", code=halt.code)
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
    stake_u = amount_validate(stake_u, field="stake_u")
    if stake_u < settings.BET_MIN_STAKE_U:
        raise StakeTooSmall(
            f"stake_u must be at least {settings.BET_MIN_STAKE_U} u.", min_stake_u=settings.BET_MIN_STAKE_U
        )
    if stake_u > settings.BET_MAX_STAKE_U:
        raise StakeTooLarge(
            f"stake_u must not exceed {settings.BET_MAX_STAKE_U} u.", max_stake_u=settings.BET_MAX_STAKE_U
        )
    return stake_u


def _bet_replayed(*, user: User, idempotency_key: str | None, request_digest: str) -> Bet | None:
    if idempotency_key is None:
        return None
    bet = bet_by_idempotency_key(user_id=user.pk, idempotency_key=idempotency_key)
    if bet is not None and bet.request_digest != request_digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {idempotency_key!r} was already used for a different bet (id {bet.pk})."
        )
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
    limit_u = settings.BET_MAX_USER_ROUND_STAKE_U
    if stake_u > limit_u:
        raise RoundStakeLimitExceeded(f"Your total stake in a round must not exceed {limit_u} u.", limit_u=limit_u)
    with transaction.atomic():
        taken = _round_pool_raise(round_code=round_code, side=side, stake_u=stake_u, now=now)
        if taken is None:
            raise _round_refusal(round_code=round_code, now=now)
        round_id, code = taken
        bet = Bet.objects.create(
            round_id=round_id,
            user_id=user.pk,
            side=side,
            stake_u=stake_u,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
        )
        bet.round_code = code
        # Bets of one round are serialised by the round row lock taken above, so this sum
        # sees every committed bet of the user in the round.
        total_u = Bet.objects.filter(user_id=user.pk, round_id=round_id).aggregate(total=Sum("stake_u"))["total"]
        if total_u > limit_u:
            raise RoundStakeLimitExceeded(
                f"Your total stake in round {code} would be {total_u} u; the limit is {limit_u} u.",
                limit_u=limit_u,
                round_total_u=total_u - stake_u,
            )
        cash = Account.user_cash_code(user.pk)
        try:
            ledger_post(
                [Line(cash, -stake_u), Line(Account.round_pool_code(code), stake_u)],
                ref_type="bet",
                ref_id=bet.pk,
                idempotency_key=f"bet:{bet.pk}",
                acting_user=acting_user,
            )
        except UnknownAccount:
            if Account.objects.filter(code=cash).exists():
                raise
            raise InsufficientFunds(
                f"Insufficient funds in {cash}: no cash account yet.", account=cash, balance_u=0
            ) from None
        if acting_user is not None and acting_user.pk != user.pk:
            audit_record(
                action="bet.place_on_behalf",
                source=source,
                actor=acting_user,
                object_type="bet",
                object_id=bet.pk,
                after={"user": str(user.pk), "round": code, "side": side, "stake_u": stake_u},
            )
    return bet


def _round_pool_raise(*, round_code: str | None, side: str, stake_u: int, now: datetime) -> tuple[int, str] | None:
    """The one conditional UPDATE: raise the side's pool iff the round is OPEN and now < lock_at.

    Raw SQL only for RETURNING (id, code): it saves the round trip a SELECT would cost on
    the hot path. Without a code it targets the current round as rounds.selectors.round_current
    sees it (the earliest OPEN one). Returns None when no row qualified.
    """
    column = _POOL_COLUMN[side]
    if round_code is None:
        target, params = "code = (SELECT MIN(code) FROM rounds WHERE status = %s)", [Round.Status.OPEN.value]
    else:
        target, params = "code = %s", [round_code]
    sql = (
        f"UPDATE rounds SET {column} = {column} + %s WHERE {target} AND status = %s AND lock_at > %s RETURNING id, code"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [stake_u, *params, Round.Status.OPEN.value, connection.ops.adapt_datetimefield_value(now)])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _round_refusal(*, round_code: str | None, now: datetime) -> ApplicationError:
    """Why the conditional UPDATE found no row (the refusal path may spend a query on a precise answer)."""
    round_ = round_get(code=round_code) if round_code is not None else round_current()  # raises unknown_round
    if round_ is None:
        return NoCurrentRound("No round is open for betting right now.")
    if round_.status != Round.Status.OPEN:
        return RoundNotOpen(f"Round {round_.code} is {round_.status}; bets are accepted only while it is OPEN.")
    return BettingClosed(f"Betting on round {round_.code} closed at {round_.lock_at.isoformat()} (lock time).")
