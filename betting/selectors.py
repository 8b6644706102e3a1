import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from rest_framework.authtoken.models import Token

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


def bet_round_totals(*, round_id: int, placed_only: bool = True) -> tuple[int, int, int, int]:
    """(up_u, down_u, up_count, down_count) of the round's unsettled bets (every bet: `placed_only=False`)."""
    status_sql, params = ("AND status = %s ", [Bet.Status.PLACED]) if placed_only else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT side, COALESCE(SUM(stake_u), 0), COUNT(*) FROM bets WHERE round_id = %s {status_sql}GROUP BY side",
            [round_id, *params],
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


@dataclass(frozen=True)
class BettorSideStake:
    user_id: Any
    email: str
    side: str
    staked_u: int
    bets: int
    payout_if_wins_u: int  # what this bettor's bets on `side` pay if `side` wins (the settlement's per-bet floors)


def bet_exposure_by_bettor(
    *, round_id: int, payout_terms: dict[str, tuple[int, int]], user_id: Any = None, limit: int | None = None
) -> list[BettorSideStake]:
    """Each bettor's stake per side of the round, biggest first, with what it pays if that side wins.

    `payout_terms` {side: (distributable_u, winning_pool_u)}: the settlement's two figures if that side
    won (risk.exposure derives them; (0, 1) pays stakes back, as a VOID does). Every bet of the
    round counts, whatever its status.
    """
    extra = bet_payout_extra_sql("b.stake_u")
    params: list[Any] = [*payout_terms["UP"], *payout_terms["DOWN"], round_id]
    where = "b.round_id = %s"
    if user_id is not None:
        where += " AND b.user_id = %s"
        params.append(User._meta.pk.get_db_prep_value(uuid.UUID(str(user_id)), connection))
    sql = (
        f"SELECT b.user_id, u.email, b.side, SUM(b.stake_u), COUNT(*), "
        f"SUM(b.stake_u + CASE WHEN b.side = 'UP' THEN {extra} ELSE {extra} END) "
        f"FROM bets b JOIN users u ON u.id = b.user_id WHERE {where} "
        "GROUP BY b.user_id, u.email, b.side ORDER BY SUM(b.stake_u) DESC, u.email, b.side"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        BettorSideStake(
            user_id=uuid.UUID(str(user)),
            email=email,
            side=side,
            staked_u=int(staked),
            bets=int(count),
            payout_if_wins_u=int(paid),
        )
        for user, email, side, staked, count, paid in rows
    ]


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


def bet_receipt_rows_iter(*, round_id: int) -> Iterator[tuple[int, Any, str, int, int]]:
    """(bet id, user id, side, stake_u, payout_u) of every bet of the round in id order, paged: the receipts' leaves.

    On PostgreSQL the pages are raw rows with the user id as its text (what str() of the UUID gives, so the
    pseudonyms are the same): a million bets skip the ORM's per-row conversions.
    """
    last_id = 0
    raw = connection.vendor == "postgresql"
    table = Bet._meta.db_table
    while True:
        if raw:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, user_id::text, side, stake_u, payout_u FROM {table} "  # noqa: S608 - table name only
                    "WHERE round_id = %s AND id > %s ORDER BY id LIMIT %s",
                    [round_id, last_id, BET_PAGE],
                )
                page = cursor.fetchall()
        else:
            page = list(
                Bet.objects.filter(round_id=round_id, id__gt=last_id)
                .order_by("id")
                .values_list("id", "user_id", "side", "stake_u", "payout_u")[:BET_PAGE]
            )
        yield from page
        if len(page) < BET_PAGE:
            return
        last_id = page[-1][0]


RECEIPT_ROWS_CHUNK = 1 << 22  # bytes of whole lines per chunk of bet_receipt_rows_text


def bet_receipt_rows_text(*, round_id: int) -> Iterator[bytes]:
    """Every bet of the round in bet id order as text, b"<bet id>|<user id>|<side>|<stake_u>|<payout_u>\\n"
    lines, in chunks of whole lines (RECEIPT_ROWS_CHUNK bytes or so): bet_receipt_rows_iter's rows, the
    user id as str() of the UUID writes it. On PostgreSQL one COPY, which sends a message per row, so each
    chunk ends on a row; elsewhere bet_receipt_rows_iter's pages. Streamed: list() it to hold the rows
    (~60 bytes a bet) and free the connection for other work while they are hashed.
    """
    pending = bytearray()
    if connection.vendor == "postgresql":
        query = (
            f"COPY (SELECT id, user_id, side, stake_u, payout_u FROM {Bet._meta.db_table} "  # noqa: S608 - an int
            f"WHERE round_id = {int(round_id)} ORDER BY id) TO STDOUT WITH (DELIMITER '|')"
        )
        with connection.cursor() as cursor, cursor.copy(query) as copy:
            for data in copy:
                pending += data
                if len(pending) >= RECEIPT_ROWS_CHUNK:
                    yield bytes(pending)
                    pending.clear()
    else:
        for bet_id, user_id, side, stake_u, payout_u in bet_receipt_rows_iter(round_id=round_id):
            pending += f"{bet_id}|{user_id}|{side}|{stake_u}|{payout_u}\n".encode()
            if len(pending) >= RECEIPT_ROWS_CHUNK:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)


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


def bets_round_and_side(*, bet_ids: list[Any]) -> dict[str, tuple[str, str]]:
    """{str(bet id): (round code, side)} for statement lines (ledger ref_ids are strings)."""
    ids = [int(i) for i in bet_ids if str(i).isdigit()]
    rows = Bet.objects.filter(pk__in=ids).values_list("pk", "round__code", "side")
    return {str(pk): (code, side) for pk, code, side in rows}


def bet_by_idempotency_key(*, user_id: Any, idempotency_key: str) -> Bet | None:
    return _bets().filter(user_id=user_id, idempotency_key=idempotency_key).first()


# --- Reads for operations (ops reads bets and users only through these) --------


def bets_count(*, since: dt.datetime) -> int:
    """Bets accepted from `since` on."""
    return Bet.objects.filter(created_at__gte=since).count()


def bet_stakes_by_round_u(*, round_codes: list[str]) -> dict[str, int]:
    """{round code: Σ stake_u of its bets} for those rounds (a round without bets is absent)."""
    return dict(
        Bet.objects.filter(round__code__in=list(round_codes))
        .values("round__code")
        .annotate(total=Sum("stake_u"))
        .values_list("round__code", "total")
    )


@dataclass(frozen=True)
class BetActivity:
    bets: int
    bettors: int
    volume_u: int


def bet_activity(*, start: dt.datetime, end: dt.datetime) -> BetActivity:
    numbers = Bet.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        count=Count("id"), users=Count("user_id", distinct=True), volume=Sum("stake_u")
    )
    return BetActivity(bets=numbers["count"], bettors=numbers["users"], volume_u=numbers["volume"] or 0)


def bet_volume_by_day_u(*, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> dict[dt.date, int]:
    """{local day: Σ stake_u} of the bets placed in [start, end)."""
    return dict(
        Bet.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(total=Sum("stake_u"))
        .values_list("day", "total")
    )


def users_count(*, joined_before: dt.datetime, joined_since: dt.datetime | None = None) -> int:
    users = User.objects.filter(date_joined__lt=joined_before)
    if joined_since is not None:
        users = users.filter(date_joined__gte=joined_since)
    return users.count()


def bets_since(*, since: dt.datetime) -> list[tuple[int, int]]:
    """(bet id, stake_u) of the bets placed from `since` on."""
    return list(Bet.objects.filter(created_at__gte=since).values_list("id", "stake_u"))


def betting_tables() -> dict[str, str]:
    """The tables betting owns, by role: for whole-database tools (backup provenance, restore loss)."""
    return {"bets": Bet._meta.db_table, "users": User._meta.db_table}


def betting_last_writes() -> dict[str, dt.datetime | None]:
    """{"table.column": latest stamp} of every timestamp betting stamps on a write (the restore's quiet clock).

    The API tokens are the bettors' logins: counted here, with the users.
    """
    users = User.objects.aggregate(joined=Max("date_joined"), login=Max("last_login"))
    return {
        f"{Bet._meta.db_table}.created_at": Bet.objects.aggregate(at=Max("created_at"))["at"],
        f"{User._meta.db_table}.date_joined": users["joined"],
        f"{User._meta.db_table}.last_login": users["login"],
        f"{Token._meta.db_table}.created": Token.objects.aggregate(at=Max("created"))["at"],
    }
