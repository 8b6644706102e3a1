"""Hypothesis: for any pools, Σ payouts + fee + dust = pool, every winner gets at least the stake,
and dust is less than one micro-USDC per winning bet. Runs through the real SQL settlement."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from betting.models import Bet
from ledger.selectors import account_balance_u
from rounds.models import Round
from rounds.services import round_lock, round_open, round_settle
from tests.rounds.conftest import place_bet

pytestmark = [pytest.mark.django_db, pytest.mark.money]

stakes = st.lists(
    st.tuples(st.sampled_from(["UP", "DOWN"]), st.integers(min_value=1, max_value=10**12)), min_size=1, max_size=12
)


class Rollback(Exception):
    pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bets=stakes, result=st.sampled_from(["UP", "DOWN", "VOID"]), fee_bps=st.integers(min_value=0, max_value=10_000))
def test_settlement_conserves_the_pool(users_pool, bets, result, fee_bps):
    try:
        with transaction.atomic():
            round_, _ = round_open(code="20250908")
            Round.objects.filter(pk=round_.pk).update(fee_bps=fee_bps)
            round_.refresh_from_db()
            for index, (side, stake_u) in enumerate(bets):
                place_bet(round_, users_pool[index % len(users_pool)], side, stake_u)
            round_lock(code=round_.code)
            house_before = account_balance_u(code="house")
            pool_u = sum(stake_u for _, stake_u in bets)

            settlement = round_settle(code=round_.code, result=result)

            assert settlement.paid_out_u + settlement.fee_u + settlement.dust_u == pool_u
            assert account_balance_u(code="house") - house_before == settlement.fee_u + settlement.dust_u
            assert account_balance_u(code=f"round:{round_.code}:pool") == 0
            for bet in Bet.objects.filter(round=round_):
                if bet.status in ("WON", "REFUNDED"):
                    assert bet.payout_u >= bet.stake_u
                else:
                    assert (bet.status, bet.payout_u) == ("LOST", 0)
            if settlement.result == "VOID":
                assert (settlement.fee_u, settlement.dust_u, settlement.paid_out_u) == (0, 0, pool_u)
            else:
                assert 0 <= settlement.dust_u < settlement.winners_count
            raise Rollback
    except Rollback:
        pass


@pytest.fixture
def users_pool(users):
    return users(4, amount_u=13 * 10**12)
