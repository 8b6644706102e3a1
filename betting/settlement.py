"""Betting's door for a round's settlement: mark its bets WON / LOST / REFUNDED with their payouts.

rounds.services.round_settle calls it inside its transaction, under the round row lock. It is a
module of its own, not part of betting.services, because betting.services calls rounds.services
(a bet raises its round's pool): keeping this door apart keeps the imports one-way
(betting.services -> rounds.services -> betting.settlement), with no circle.
"""

from typing import Any, NamedTuple

from django.db import connection, transaction

from betting.models import Bet
from betting.selectors import bet_payout_extra_sql


class BetsSettled(NamedTuple):
    paid_out_u: int  # Σ payouts to bettors, stakes back included
    paid_count: int  # bets paid: the winners, or every refunded bet of a void round


def bets_settle(*, round_id: int, result: str, distributable_u: int = 0, winning_pool_u: int = 0) -> BetsSettled:
    """Settle every PLACED bet of the round, set-based: one UPDATE, whatever the number of bets.

    VOID refunds each stake. UP or DOWN: the bets on that side win stake + floor(stake ×
    distributable_u / winning_pool_u), the others lose. What was paid comes back from
    the same statement on PostgreSQL (a SUM after it elsewhere).
    Must run inside the caller's transaction (it writes nothing else, and the caller posts the
    ledger batch from the same rows).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("bets_settle must run inside the settlement's transaction")
    if result == "VOID":
        update_sql = "UPDATE bets SET status = %s, payout_u = stake_u WHERE round_id = %s AND status = %s"
        params: list[Any] = [Bet.Status.REFUNDED, round_id, Bet.Status.PLACED]
    else:
        update_sql = (
            "UPDATE bets SET status = CASE WHEN side = %s THEN %s ELSE %s END, "
            f"payout_u = CASE WHEN side = %s THEN stake_u + {bet_payout_extra_sql()} ELSE 0 END "
            "WHERE round_id = %s AND status = %s"
        )
        params = [result, Bet.Status.WON, Bet.Status.LOST, result, distributable_u, winning_pool_u, round_id]
        params.append(Bet.Status.PLACED)
    paid = [Bet.Status.WON, Bet.Status.REFUNDED]  # the winners, or every refunded bet of a void round
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the UPDATE's own rows give back what it paid (no second pass over the bets).
            cursor.execute(
                f"WITH settled AS ({update_sql} RETURNING status, payout_u) "
                "SELECT COALESCE(SUM(payout_u), 0), COUNT(*) FROM settled WHERE status IN (%s, %s)",
                [*params, *paid],
            )
        else:  # SQLite takes no UPDATE … RETURNING inside a WITH
            cursor.execute(update_sql, params)
            cursor.execute(
                "SELECT COALESCE(SUM(payout_u), 0), COUNT(*) FROM bets WHERE round_id = %s AND status IN (%s, %s)",
                [round_id, *paid],
            )
        paid_out_u, paid_count = (int(value) for value in cursor.fetchone())
    return BetsSettled(paid_out_u=paid_out_u, paid_count=paid_count)
