"""End to end with the real bet_place: bets in through the hot path, settled set-based."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from betting.services import bet_place
from ledger.selectors import tvl_get, user_balance_u
from rounds.services import round_lock, round_open, round_settle
from tests.conftest import assert_ledger_invariants

pytestmark = [pytest.mark.django_db, pytest.mark.money]


def test_bets_placed_through_bet_place_settle_exactly(users):
    a, b, c = users(3)
    with time_machine.travel(datetime(2025, 9, 8, 10, 0, tzinfo=ZoneInfo("America/New_York")), tick=False):
        round_open(code="20250908")
        bet_place(user=a, side="UP", stake_u=1_000_000, round_code="20250908")
        bet_place(user=b, side="UP", stake_u=2_000_000, round_code="20250908")
        bet_place(user=c, side="DOWN", stake_u=4_000_000, round_code="20250908")
        round_lock(code="20250908")
    assert tvl_get().locked_u == 7_000_000

    settlement = round_settle(code="20250908", result="UP")

    # fee 40 000; winners share 3 960 000 over 3 000 000: a +1 320 000, b +2 640 000
    assert (settlement.fee_u, settlement.dust_u, settlement.paid_out_u) == (40_000, 0, 6_960_000)
    assert user_balance_u(user_id=a.pk) == 10_000_000_000 + 1_320_000
    assert user_balance_u(user_id=b.pk) == 10_000_000_000 + 2_640_000
    assert user_balance_u(user_id=c.pk) == 10_000_000_000 - 4_000_000
    assert tvl_get().locked_u == 0
    assert_ledger_invariants()
