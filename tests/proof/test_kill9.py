"""kill -9 of a real Celery worker (real Redis broker, real PostgreSQL) in the middle of money work.

1. Settlement: the lifecycle tick settles a LOCKED round of 20 000 bets. The test holds the
   `house` account row, so the worker's settlement transaction stops half-way (bets already
   updated, settlement row and ledger batch inserted, nothing committed) waiting for it; then
   the worker is SIGKILLed. After a restart the next tick settles the round exactly once.
2. Withdrawals: the first item is claimed and its payout SENT to the custodian (the simulated
   adapter's table) while recording it waits on `external:withdrawals`; SIGKILL. After a
   restart and the lease, the next run asks the custodian first: every withdrawal paid once.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from betting.models import Bet
from ledger.models import Account, LedgerBatch
from ledger.selectors import account_balance_u, user_balance_u
from ledger.services import ledger_post_from_sql
from marketdata.models import OfficialClose
from risk.chaos_processes import backend_gone, backend_waiting_on_a_lock, holding_account_row
from rounds.models import Round, RoundSettlement
from rounds.services import round_lock, round_open
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from withdrawals.models import SimulatedPayout, Withdrawal
from withdrawals.services import withdrawal_request

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
ROUND_CODE = "20261118"  # a past trading day: due for settlement now
PREVIOUS_DAY = date(2026, 11, 17)
BETS = 20_000
BETTORS = 200
ADDRESS = "0x" + "9a" * 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def redis_url():
    """A private redis-server on a free port (never the shared 6379: no cross-talk with other runs)."""
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    try:
        _wait(answers, "redis")
    except AssertionError:
        server.kill()
        raise
    print(f"\nkill -9 proof: private redis-server on 127.0.0.1:{port} (pid {server.pid})")
    yield f"redis://127.0.0.1:{port}/0"
    server.kill()
    server.wait()


class Worker:
    """`celery -A config worker --pool=solo` against the test database and the private broker."""

    def __init__(self, broker_url: str, log_path: Path, **extra_env: str):
        settings_dict = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "TEST_DB": "postgres",
            "TEST_DATABASE_URL": (
                f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
                f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
            ),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **extra_env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [CELERY, "-A", "config", "worker", "--pool=solo", "--loglevel=INFO", "--without-heartbeat",
             "--without-gossip", "--without-mingle", "-n", f"proof-{uuid.uuid4().hex[:6]}@%h"],
            cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait(lambda: b"ready." in self.log_path.read_bytes(), "the worker to be ready", timeout=60)

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        print(f"kill -9 proof: worker pid {self.process.pid} killed with SIGKILL")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker_factory(redis_url, tmp_path):
    started: list[Worker] = []

    def make(**extra_env: str) -> Worker:
        worker = Worker(redis_url, tmp_path / "worker.log", **extra_env)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def _send(broker_url: str, task: str) -> None:
    # not the current app: shared tasks later in the session must keep the test settings (eager, memory broker)
    client = Celery("proof-client", broker=broker_url, set_as_current=False)
    client.send_task(task)
    client.close()


def _large_locked_round() -> tuple[Round, list]:
    """20 000 bets from 200 bettors, made set-based in SQL, staked through one ledger batch."""
    round_, _ = round_open(code=ROUND_CODE)
    bettors = [UserFactory() for _ in range(BETTORS)]
    for bettor in bettors:
        fund(bettor, 1_000_000_000)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bets (round_id, user_id, side, stake_u, status, payout_u, request_digest, created_at) "
            "SELECT %s, (%s::uuid[])[1 + i %% %s], CASE WHEN i %% 3 = 0 THEN 'DOWN' ELSE 'UP' END, "
            "100000 + (i * 7919) %% 900000, 'PLACED', 0, '', now() FROM generate_series(0, %s - 1) AS i",
            [round_.pk, [str(b.pk) for b in bettors], BETTORS, BETS],
        )
    pool = Account.round_pool_code(ROUND_CODE)
    ledger_post_from_sql(
        select_sql=(
            "SELECT a.code AS account, -SUM(b.stake_u) AS amount_u FROM bets b JOIN ledger_accounts a "
            "ON a.owner_id = b.user_id AND a.kind = 'user_cash' WHERE b.round_id = %s GROUP BY a.code "
            "UNION ALL SELECT CAST(%s AS VARCHAR(100)), CAST(SUM(stake_u) AS BIGINT) FROM bets WHERE round_id = %s"
        ),
        params=[round_.pk, pool, round_.pk],
        ref_type="bet",
        ref_id=f"proof-bulk:{ROUND_CODE}",
        idempotency_key=f"proof-bulk:{ROUND_CODE}",
    )
    up = sum(Bet.objects.filter(round=round_, side="UP").values_list("stake_u", flat=True))
    down = sum(Bet.objects.filter(round=round_, side="DOWN").values_list("stake_u", flat=True))
    Round.objects.filter(pk=round_.pk).update(up_pool_u=up, down_pool_u=down)
    OfficialClose.objects.update_or_create(symbol=round_.symbol, date=PREVIOUS_DAY, defaults={"price": Decimal("100")})
    OfficialClose.objects.update_or_create(
        symbol=round_.symbol, date=date(2026, 11, 18), defaults={"price": Decimal("101")}
    )
    return round_lock(code=ROUND_CODE), bettors


def test_worker_killed_mid_settlement_then_the_next_tick_settles_exactly_once(redis_url, worker_factory):
    # given: a LOCKED round of 20 000 bets, due (settle_at passed), close above the previous one (UP)
    round_, bettors = _large_locked_round()
    cash_before = {b.pk: user_balance_u(user_id=b.pk) for b in bettors}
    house_before = account_balance_u(code=Account.HOUSE)
    stakes = list(Bet.objects.filter(round=round_).values_list("user_id", "side", "stake_u"))
    up = sum(s for _, side, s in stakes if side == "UP")
    down = sum(s for _, side, s in stakes if side == "DOWN")
    worker = worker_factory()
    worker.start()

    # when: the tick runs and is stopped half-way by the held house row; then kill -9
    with holding_account_row(Account.HOUSE):
        _send(redis_url, "rounds.lifecycle_tick")
        backend = _wait(lambda: backend_waiting_on_a_lock("%ledger_accounts%FOR NO KEY UPDATE%"), "the settlement")
        worker.kill9()
    _wait(lambda: backend_gone(backend), "the dead worker's transaction to end")

    # then: nothing of it was committed
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    assert not RoundSettlement.objects.exists()
    assert not LedgerBatch.objects.filter(ref_type="settlement").exists()
    assert Bet.objects.filter(round=round_).exclude(status="PLACED").count() == 0
    assert account_balance_u(code=Account.round_pool_code(ROUND_CODE)) == up + down

    # when: restart, and the next tick (twice, as a redelivery or a second beat would)
    restarted = worker_factory()
    restarted.start()
    _send(redis_url, "rounds.lifecycle_tick")
    _send(redis_url, "rounds.lifecycle_tick")
    _wait(lambda: Round.objects.get(pk=round_.pk).status == "SETTLED", "the settlement after restart")
    time.sleep(1)  # let the second tick run too

    # then: settled once, UP, every payout exact
    settlement = RoundSettlement.objects.get()
    assert settlement.result == "UP" and settlement.bets_count == BETS
    assert LedgerBatch.objects.filter(ref_type="settlement").count() == 1
    fee = down * round_.fee_bps // 10_000
    expected = {b.pk: 0 for b in bettors}
    for user_id, side, stake in stakes:
        if side == "UP":
            expected[user_id] += stake + stake * (down - fee) // up
    for bettor in bettors:
        assert user_balance_u(user_id=bettor.pk) == cash_before[bettor.pk] + expected[bettor.pk]
    paid = sum(expected.values())
    assert settlement.paid_out_u == paid
    assert (settlement.fee_u, settlement.fee_u + settlement.dust_u) == (fee, up + down - paid)
    assert account_balance_u(code=Account.HOUSE) == house_before + up + down - paid
    assert account_balance_u(code=Account.round_pool_code(ROUND_CODE)) == 0
    assert_ledger_invariants()


def test_worker_killed_between_payout_sent_and_recorded_never_pays_twice(redis_url, worker_factory):
    # given: five approved withdrawals; the worker's lease is short so a restart resumes soon
    bettor = UserFactory()
    fund(bettor, 100_000_000)
    ids = [
        withdrawal_request(user=bettor, amount_u=1_000_000 * (i + 1), destination=ADDRESS, source="api")[0].pk
        for i in range(5)
    ]
    worker = worker_factory(WITHDRAWAL_PROCESSING_LEASE_SECONDS="2")
    worker.start()

    # when: the batch runs; the first payout is sent, its recording waits; kill -9
    with holding_account_row(Account.EXTERNAL_WITHDRAWALS):
        _send(redis_url, "withdrawals.process_batch")
        backend = _wait(lambda: backend_waiting_on_a_lock("%ledger_accounts%FOR NO KEY UPDATE%"), "the recording")
        worker.kill9()
    _wait(lambda: backend_gone(backend), "the dead worker's transaction to end")

    # then: one payout left the house, none is recorded; only that one was claimed (items are claimed one
    # at a time, immediately before their send), the other four are still QUEUED
    assert SimulatedPayout.objects.count() == 1
    assert list(Withdrawal.objects.order_by("id").values_list("status", flat=True)) == ["PROCESSING"] + ["QUEUED"] * 4
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0

    # when: restart; after the lease the next runs resume (status first, then send)
    restarted = worker_factory(WITHDRAWAL_PROCESSING_LEASE_SECONDS="2")
    restarted.start()
    time.sleep(2.5)
    _send(redis_url, "withdrawals.process_batch")
    _send(redis_url, "withdrawals.process_batch")
    _wait(lambda: Withdrawal.objects.filter(status="COMPLETED").count() == 5, "every withdrawal completed")

    # then: each withdrawal paid exactly once, to the cent
    payouts = SimulatedPayout.objects.order_by("reference")
    assert sorted(p.reference for p in payouts) == sorted(
        Withdrawal.objects.filter(pk__in=ids).values_list("payout_reference", flat=True)
    )
    assert sum(p.amount_u for p in payouts) == 15_000_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 15_000_000
    assert account_balance_u(code=Account.WITHDRAWALS_PENDING) == 0
    assert user_balance_u(user_id=bettor.pk) == 85_000_000
    assert_ledger_invariants()
