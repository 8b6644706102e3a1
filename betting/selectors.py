from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet

from betting.exceptions import UnknownBet
from betting.models import Bet, User
from common.errors import NotFound


def user_get_by_email(*, email: str) -> User:
    user = User.objects.filter(email__iexact=(email or "").strip()).first()
    if user is None:
        raise NotFound(f"No user with email {email!r}.", code="unknown_user")
    return user


def user_get(*, user_id: Any) -> User:
    try:
        user = User.objects.filter(pk=user_id).first()
    except (ValueError, TypeError, ValidationError):  # a malformed UUID is just an unknown user
        user = None
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.", code="unknown_user")
    return user


def _bets() -> QuerySet[Bet]:
    # The API shows a bet's round by its code: joined here, not one query per row in the serializer.
    return Bet.objects.select_related("round")


# --- A round's bets, as settlement sees them (rounds.selectors and rounds.services ask) ---------
# The per-bet payout rule (DESIGN.md): a winning bet gets stake + floor(stake × (losing − fee) /
# winning); rounds decides the result, the fee and so the two pool figures. stake × (losing − fee)
# overflows BIGINT for ordinary amounts (a 10 000 USDC stake against a 1 000 USDC pool is already
# > 2^63 u²), so the product is taken in NUMERIC on PostgreSQL and in Python's unbounded ints on
# SQLite; the quotient is at most the pool, which fits a BIGINT.

BET_PAGE = 20_000


def _muldiv(stake_u: int, numerator_u: int, denominator_u: int) -> int:
    return stake_u * numerator_u // denominator_u


def bet_payout_extra_sql(stake_column: str = "stake_u") -> str:
    """SQL for floor(stake × %s / %s): two parameters, (losing − fee) then winning pool."""
    if connection.vendor == "postgresql":
        # div() on numeric is the exact integer quotient (no rounding through a scale).
        return f"div({stake_column}::numeric * %s, %s)::bigint"
    connection.ensure_connection()
    connection.connection.create_function("updown_muldiv", 3, _muldiv, deterministic=True)
    return f"updown_muldiv({stake_column}, %s, %s)"


def bet_round_totals(*, round_id: int) -> tuple[int, int, int, int]:
    """(up_u, down_u, up_count, down_count) of the round's unsettled bets, from the bets themselves."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT side, COALESCE(SUM(stake_u), 0), COUNT(*) FROM bets WHERE round_id = %s AND status = %s "
            "GROUP BY side",
            [round_id, Bet.Status.PLACED],
        )
        rows = {side: (int(total), int(count)) for side, total, count in cursor.fetchall()}
    up_u, up_n = rows.get(Bet.Side.UP, (0, 0))
    down_u, down_n = rows.get(Bet.Side.DOWN, (0, 0))
    return up_u, down_u, up_n, down_n


def bet_payout_preview(*, round_id: int, side: str, distributable_u: int, winning_pool_u: int) -> tuple[int, int]:
    """(winners, Σ payouts) the settlement of `side` would pay: the same SQL as bets_settle, read-only."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(stake_u + {bet_payout_extra_sql()}), 0) FROM bets "
            "WHERE round_id = %s AND status = %s AND side = %s",
            [distributable_u, winning_pool_u, round_id, Bet.Status.PLACED, side],
        )
        winners, paid_u = cursor.fetchone()
    return int(winners), int(paid_u)


def bet_payouts_iter(*, round_id: int) -> Iterator[tuple[int, int]]:
    """(bet id, payout_u) of every bet of the round in id order, a page at a time (flat memory)."""
    last_id = 0
    while True:
        page = list(
            Bet.objects.filter(round_id=round_id, id__gt=last_id)
            .order_by("id")
            .values_list("id", "payout_u")[:BET_PAGE]
        )
        yield from page
        if len(page) < BET_PAGE:
            return
        last_id = page[-1][0]


def bet_payouts_by_user_sql(*, round_id: int) -> tuple[str, list[Any]]:
    """A SELECT of (user_id, amount_u): what each user's settled bets pay, for ledger_post_from_sql."""
    return "SELECT user_id, payout_u AS amount_u FROM bets WHERE round_id = %s AND payout_u > 0", [round_id]


def bet_list(*, user: User, round_code: str | None = None) -> QuerySet[Bet]:
    """The user's own bets, newest first, optionally of one round."""
    bets = _bets().filter(user_id=user.pk)
    if round_code:
        bets = bets.filter(round__code=round_code)
    return bets.order_by("-id")


def bet_get(*, user: User, bet_id: Any) -> Bet:
    """One of the user's own bets; another user's bet is as unknown as a missing one (404, not 403)."""
    try:
        bet = _bets().filter(user_id=user.pk, pk=int(bet_id)).first()
    except (TypeError, ValueError, OverflowError):
        bet = None
    if bet is None:
        raise UnknownBet(f"No bet {bet_id} of yours.")
    return bet


def bet_by_idempotency_key(*, user_id: Any, idempotency_key: str) -> Bet | None:
    return _bets().filter(user_id=user_id, idempotency_key=idempotency_key).first()
