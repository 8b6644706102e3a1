"""Races on PostgreSQL with real threads (SQLite serialises writers and cannot show them).

Each worker closes its own database connection when its task ends; at most 20 run at once so
the shared server's connection limit is never near.
"""

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from betting.models import Bet
from betting.services import bet_place
from common.errors import ApplicationError
from ledger.models import Account, LedgerEntry
from ledger.selectors import account_balance_u, user_balance_u
from rounds.models import Round
from rounds.services import round_lock
from tests.betting.conftest import round_create
from tests.conftest import api_client_for, assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.postgres, pytest.mark.money, pytest.mark.django_db(transaction=True)]

WORKERS = 20


def _concurrently(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the tasks in order on WORKERS threads; each result is the return value or the ApplicationError.

    Each thread keeps its connection for all its tasks and closes it when the queue is empty.
    """
    results: list[Any] = [None] * len(tasks)
    todo: queue.Queue = queue.Queue()
    for item in enumerate(tasks):
        todo.put(item)
    errors: list[BaseException] = []

    def worker():
        try:
            while True:
                try:
                    index, task = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = task()
                except ApplicationError as exc:
                    results[index] = exc
                except BaseException as exc:  # a 500 in the making: fail the test with it
                    errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_fifty_parallel_posts_with_one_key_make_one_bet():
    # given
    round_create("20250908")
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    client_for = api_client_for  # one client per request: APIClient is not thread-safe

    def post():
        response = client_for(bettor).post(
            "/api/v1/bets", {"side": "UP", "stake_u": 3_000_000}, format="json", HTTP_IDEMPOTENCY_KEY="one-key"
        )
        return response.status_code, response.json()

    # when
    results = _concurrently([post] * 50)
    # then
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 49 + [201]
    assert all(body == results[0][1] for _, body in results)
    assert Bet.objects.count() == 1
    assert user_balance_u(user_id=bettor.pk) == 7_000_000
    assert account_balance_u(code=Account.round_pool_code("20250908")) == 3_000_000
    assert_ledger_invariants()


def test_bets_racing_the_lock_are_each_in_the_pool_or_refused():
    # given: 10 bettors, 100 bets of distinct stakes; round_lock is submitted after the 50th,
    # and 25 bets wait until the lock has committed (so some refusals are certain)
    round_create("20250908")
    bettors = [UserFactory() for _ in range(10)]
    for bettor in bettors:
        fund(bettor, 100_000_000)
    locked = threading.Event()

    def bet(i: int, after_lock: bool = False):
        def task():
            if after_lock:
                locked.wait(timeout=30)
            side = "UP" if i % 2 else "DOWN"
            placed, _ = bet_place(user=bettors[i % 10], side=side, stake_u=1_000_000 + i, round_code="20250908")
            return placed

        return task

    def lock():
        try:
            return round_lock(code="20250908")
        finally:
            locked.set()

    tasks = [bet(i) for i in range(50)] + [lock] + [bet(i) for i in range(50, 75)]
    tasks += [bet(i, after_lock=True) for i in range(75, 100)]
    # when
    results = _concurrently(tasks)
    # then
    assert isinstance(results[50], Round)
    bet_results = results[:50] + results[51:]
    accepted = [r for r in bet_results if isinstance(r, Bet)]
    refused = [r for r in bet_results if not isinstance(r, Bet)]
    assert len(accepted) + len(refused) == 100
    assert {r.code for r in refused} <= {"round_not_open"}, [(r.code, r.detail) for r in refused]
    assert len(accepted) >= 31  # 31 bets had finished before a worker was free to take the lock task
    assert len(refused) >= 25  # the bets that waited for the lock
    round_ = Round.objects.get(code="20250908")
    assert round_.status == Round.Status.LOCKED
    up_u = sum(b.stake_u for b in accepted if b.side == "UP")
    down_u = sum(b.stake_u for b in accepted if b.side == "DOWN")
    assert (round_.up_pool_u, round_.down_pool_u) == (up_u, down_u)
    assert account_balance_u(code=Account.round_pool_code("20250908")) == up_u + down_u
    assert sorted(Bet.objects.values_list("id", flat=True)) == sorted(b.pk for b in accepted)
    assert LedgerEntry.objects.filter(ref_type="bet").count() == 2 * len(accepted)
    for n, bettor in enumerate(bettors):
        staked = sum(b.stake_u for b in accepted if b.user_id == bettor.pk)
        assert user_balance_u(user_id=bettor.pk) == 100_000_000 - staked, n
    assert_ledger_invariants()


def test_two_hundred_bets_against_a_balance_for_exactly_n():
    # given: cash for exactly 37 bets of 1 USDC
    round_create("20250908")
    bettor = UserFactory()
    fund(bettor, 37 * 1_000_000 + 999_999)

    def bet():
        placed, _ = bet_place(user=bettor, side="DOWN", stake_u=1_000_000)
        return placed

    # when
    results = _concurrently([bet] * 200)
    # then
    accepted = [r for r in results if isinstance(r, Bet)]
    refused = [r for r in results if not isinstance(r, Bet)]
    assert len(accepted) == 37
    assert [r.code for r in refused] == ["insufficient_funds"] * 163
    assert user_balance_u(user_id=bettor.pk) == 999_999
    assert account_balance_u(code=Account.round_pool_code("20250908")) == 37_000_000
    assert Round.objects.get(code="20250908").down_pool_u == 37_000_000
    assert Bet.objects.count() == 37
    assert_ledger_invariants()


def test_round_lock_waits_for_a_bet_in_flight_and_counts_it(monkeypatch):
    """A bet admitted before the lock holds the round's KEY SHARE lock: round_lock (FOR UPDATE) waits for it,
    then locks with the bet in the pool. Deterministic: the bet is paused inside its transaction, and the
    test sees round_lock's backend waiting on a lock in pg_stat_activity before letting the bet go on."""
    import betting.services as services
    from audit.models import AuditEvent

    round_create("20250908")
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    admitted, go = threading.Event(), threading.Event()
    real_raise_sql = services.round_pool_raise_sql  # runs once the round admitted the bet (KEY SHARE held)

    def paused_check(*args, **kwargs):
        admitted.set()
        assert go.wait(30)
        return real_raise_sql(*args, **kwargs)

    monkeypatch.setattr(services, "round_pool_raise_sql", paused_check)
    results: dict[str, Any] = {}

    def bet():
        try:
            results["bet"] = bet_place(user=bettor, side="UP", stake_u=3_000_000)
        finally:
            connection.close()

    def lock():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                results["lock_pid"] = cursor.fetchone()[0]
            results["lock"] = round_lock(code="20250908")
        finally:
            connection.close()

    bet_thread = threading.Thread(target=bet)
    bet_thread.start()
    assert admitted.wait(30)
    lock_thread = threading.Thread(target=lock)
    lock_thread.start()
    waiting = False
    for _ in range(300):  # until round_lock's backend waits on the bet's row lock (at most 30 s)
        if "lock_pid" in results:
            with connection.cursor() as cursor:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [results["lock_pid"]])
                row = cursor.fetchone()
            if row and row[0] == "Lock":
                waiting = True
                break
        threading.Event().wait(0.1)
    go.set()
    bet_thread.join(30)
    lock_thread.join(30)
    assert waiting, "round_lock did not wait for the bet in flight"
    bet_row, created = results["bet"]
    assert created is True
    round_ = Round.objects.get(code="20250908")
    assert (round_.status, round_.up_pool_u, round_.down_pool_u) == ("LOCKED", 3_000_000, 0)
    locked = AuditEvent.objects.get(action="round.lock", object_id="20250908")
    assert locked.after["up_pool_u"] == 3_000_000
    assert account_balance_u(code=Account.round_pool_code("20250908")) == 3_000_000
    assert_ledger_invariants()


def test_the_running_totals_and_the_rounds_holders_stay_exact_under_concurrent_bets():
    """4 bettors place 60 bets at once, each bettor from several threads, both sides: every bettor's bet_totals
    row equals the sum of their bets per side, and the round's bettor count and largest stakes equal a GROUP BY
    over its bets (no stake lost to a stale read of a row another thread was changing)."""
    from betting.models import BettorRoundTotal

    round_create("20250908")
    bettors = [UserFactory() for _ in range(4)]
    for bettor in bettors:
        fund(bettor, 1_000_000_000)
    plan = [(bettors[i % 4], "UP" if i % 3 else "DOWN", 1_000_000 + 10_007 * i) for i in range(60)]

    def task(user, side, stake_u):
        return lambda: bet_place(user=user, side=side, stake_u=stake_u)[0]

    results = _concurrently([task(*step) for step in plan])

    assert all(isinstance(r, Bet) for r in results), [r for r in results if not isinstance(r, Bet)]
    expected: dict = {}
    for user, side, stake_u in plan:
        up_u, down_u = expected.get(user.pk, (0, 0))
        expected[user.pk] = (up_u + stake_u, down_u) if side == "UP" else (up_u, down_u + stake_u)
    totals = {t.user_id: (t.up_u, t.down_u) for t in BettorRoundTotal.objects.filter(round__code="20250908")}
    assert totals == expected
    round_ = Round.objects.get(code="20250908")
    assert round_.bettors == 4
    assert round_.up_top_u == max(u for u, _ in expected.values())
    assert round_.down_top_u == max(d for _, d in expected.values())
    assert round_.top_u == max(u + d for u, d in expected.values())
    assert round_.up_pool_u + round_.down_pool_u == sum(stake_u for *_, stake_u in plan) == 77_712_390
    assert_ledger_invariants()
