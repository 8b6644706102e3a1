import logging
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from audit.events import AuditAction
from audit.services import audit_record
from betting.exceptions import InvalidSide
from betting.models import Bet, User
from betting.selectors import bet_by_idempotency_key, bet_user_totals_u
from common.errors import ApplicationError, Conflict, permission_require
from common.idempotency import idempotency_key_validate, replay_check, request_digest
from ledger.exceptions import InsufficientFunds, UnknownAccount
from ledger.selectors import account_code_round_pool, account_code_user_cash, account_exists
from ledger.services import Line, account_ensure_user_cash, amount_validate, ledger_post
from ops.counters import event_count_add
from ops.exceptions import halt_refusal
from ops.selectors import betting_halt
from risk.checks import BetAttempt, UserTotals, bet_limits_check, market_day_start
from rounds.selectors import round_code_parse
from rounds.services import round_pool_raise

logger = logging.getLogger(__name__)


def user_create(*, email: str, password: str | None = None, is_staff: bool = False, can_log_in: bool = True) -> User:
    """A bettor (or staff user) with the cash account every bettor has.

    `can_log_in=False` (synthetic bettors of `simulate`, who use API tokens only): an unusable password,
    so no password hash is computed.
    """
    email = (email or "").strip().lower()
    taken = Conflict(f"A user with email {email!r} already exists.", code="email_taken")
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise taken
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email=email,
                    password=(password or secrets.token_urlsafe(12)) if can_log_in else None,
                    is_staff=is_staff,
                )
        except IntegrityError as exc:  # a concurrent user_create of this email won the unique index
            raise taken from exc
        account_ensure_user_cash(user=user)
    return user


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
    on the clock (a late lock task does not keep betting open); every risk limit (self-exclusion,
    min/max stake, round pool cap, side imbalance, the user's round and daily totals, per-user
    overrides) in ONE call, risk.checks.bet_limits_check, right after the round's pool UPDATE.

    Concurrency: one transaction whose first statement is rounds.services.round_pool_raise,
    the round's door: a conditional UPDATE of the round row (status OPEN and lock_at > now)
    that also raises the side's pool. That statement both checks the state and takes the
    round row lock, so a bet racing round_lock is either wholly in or refused. Then the bet row,
    bet_limits_check (the one call point of every limit), and the ledger batch (user cash ->
    round pool; it locks the accounts in code order and refuses an overdraft). Any refusal rolls
    the whole transaction back: nothing written.

    Idempotency (per user): the same key with the same request returns the first bet
    (created=False); the same key with a different request is IdempotencyConflict (422).
    A *refused* request writes nothing, so it does not consume its key: retrying the same
    key after the cause is fixed (e.g. a deposit after insufficient_funds) is a new attempt.
    Concurrent twins: the unique (user, idempotency_key) index lets one win; the others
    roll back and answer with the winner's bet.

    Round trips on success: halt check 1, round UPDATE 1, bet INSERT 1, user totals SUM 1 (only with a
    per-user total limit set; the limits themselves are cached in memory, risk.selectors),
    ledger_post 7 (savepoint, key check, batch, account lock, entries, balances, release).

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
    # Only the amount's shape here; its limits (minimum, maximum, ...) are risk.checks.bet_limits_check's.
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
    with transaction.atomic():
        # The round's door: raises its pool and takes its row lock, or refuses (round_not_open, ...).
        round_ = round_pool_raise(round_code=round_code, side=side, stake_u=stake_u, now=now)
        round_id, code = round_.pk, round_.code
        bet = Bet.objects.create(
            round=round_,
            user_id=user.pk,
            side=side,
            stake_u=stake_u,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
        )
        # Every limit, in one call (risk.checks). Bets of one round are serialised by the round row
        # lock taken above, so the pools it was given and the user's totals it asks for see every
        # committed bet of the round; the limits themselves come from memory (no query).
        bet_limits_check(
            BetAttempt(
                user_id=user.pk,
                round_code=code,
                side=side,
                stake_u=stake_u,
                up_pool_u=round_.up_pool_u,
                down_pool_u=round_.down_pool_u,
                now=now,
            ),
            user_totals=lambda: UserTotals(
                *bet_user_totals_u(user_id=user.pk, round_id=round_id, since=market_day_start(now))
            ),
        )
        cash = account_code_user_cash(user_id=user.pk)
        try:
            ledger_post(
                [Line(cash, -stake_u), Line(account_code_round_pool(round_code=code), stake_u)],
                ref_type="bet",
                ref_id=bet.pk,
                idempotency_key=f"bet:{bet.pk}",
                acting_user=acting_user,
            )
        except UnknownAccount:
            if account_exists(code=cash):
                raise
            raise InsufficientFunds(
                f"Insufficient funds in {cash}: no cash account yet.", account=cash, balance_u=0
            ) from None
        if acting_user is not None and acting_user.pk != user.pk:
            audit_record(
                action=AuditAction.BET_PLACE_ON_BEHALF,
                source=source,
                actor=acting_user,
                object_type="bet",
                object_id=bet.pk,
                after={"user": str(user.pk), "round": code, "side": side, "stake_u": stake_u},
            )
    return bet
