"""Races on PostgreSQL with real threads: settlement pays once, the commit chain never forks."""

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from ledger.models import LedgerBatch
from ledger.selectors import account_balance_u, user_balance_u
from rounds.exceptions import RoundAlreadySettled
from rounds.models import Round, RoundSettlement
from rounds.selectors import round_verify
from rounds.services import round_lifecycle_tick, round_lock, round_open, round_settle
from tests.conftest import assert_ledger_invariants
from tests.rounds.conftest import place_bet

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(calls):
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_racing_settlements_pay_once(users):
    round_, _ = round_open(code="20250908")
    a, b, c = users(3)
    place_bet(round_, a, "UP", 1_000_000)
    place_bet(round_, b, "UP", 2_000_000)
    place_bet(round_, c, "DOWN", 3_000_000)
    round_lock(code=round_.code)

    outcomes = _race(
        [
            lambda: round_settle(code="20250908", result="UP", source="cli"),
            lambda: round_settle(code="20250908", result="UP", source="admin", reason="race"),
            lambda: round_settle(code="20250908", result="DOWN", source="cli"),
            lambda: round_settle(code="20250908", result="VOID", source="cli"),
        ]
    )

    settled = [o for o in outcomes if isinstance(o, RoundSettlement)]
    refused = [o for o in outcomes if isinstance(o, RoundAlreadySettled)]
    assert (len(settled), len(refused)) == (1, 3), outcomes
    assert RoundSettlement.objects.count() == 1
    assert LedgerBatch.objects.filter(ref_type="settlement").count() == 1
    assert account_balance_u(code="round:20250908:pool") == 0
    total = sum(user_balance_u(user_id=u.pk) for u in (a, b, c))
    assert total == 3 * 10_000_000_000 - settled[0].fee_u - settled[0].dust_u
    assert_ledger_invariants()


def test_two_ticks_at_once_change_nothing_twice(users, settings):
    ny = ZoneInfo("America/New_York")
    with time_machine.travel(datetime(2025, 9, 8, 16, 30, tzinfo=ny), tick=False):
        round_, _ = round_open(code="20250908")
        a, b = users(2)
        place_bet(round_, a, "UP", 1_000_000)
        place_bet(round_, b, "DOWN", 1_000_000)
        outcomes = _race([lambda: round_lifecycle_tick(), lambda: round_lifecycle_tick()])
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert sorted(len(o.locked) for o in outcomes) == [0, 1]
    assert Round.objects.get(code="20250908").status == "LOCKED"  # no close yet: waits for the oracle


def test_concurrent_opens_keep_one_linear_chain():
    codes = ["20250908", "20250909", "20250910", "20250911", "20250912", "20250908"]
    outcomes = _race([lambda code=code: round_open(code=code) for code in codes])
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    rounds = list(Round.objects.order_by("id"))
    assert len(rounds) == 5
    assert [r.prev_commit_hash for r in rounds] == [""] + [r.commit_hash for r in rounds[:-1]]
    assert all(round_verify(code=r.code).ok for r in rounds)
