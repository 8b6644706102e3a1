"""The house settles itself: a real Celery beat and worker on the embedded (filesystem) broker settle a
round at its settle_at from the stub vendors, with nobody typing a close.

The beat is `celery beat` with the DatabaseScheduler and the schedule `sync_schedule` writes
(config/schedule.py); only the rounds tick is left enabled and, so the test waits seconds rather
than half a minute, its interval is 2 s instead of 30 s. The worker is the kill -9 proof's
(`celery worker --pool=solo`) on the same test database.
"""

import os
import subprocess
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import AuditEvent
from marketdata.models import CloseCheck
from marketdata.stub_vendors import (
    AV_QUERY,
    STOOQ_CLOSE,
    TD_SERIES,
    alphavantage_daily,
    stooq_daily,
    twelvedata_series,
)
from rounds.models import Round
from rounds.services import round_lock, round_open
from tests.proof.test_kill9 import BASE_DIR, CELERY, Worker, _wait
from tests.rounds.conftest import place_bet

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DAY, PREVIOUS = date(2026, 11, 30), date(2026, 11, 27)  # Monday; Friday after Thanksgiving (13:00 close)


@pytest.fixture
def processes(tmp_path, vendors):
    env = {
        "VAR_DIR": str(tmp_path / "var"),  # the embedded broker's folders, shared by beat and worker
        "ALPHAVANTAGE_API_KEY": "av-test-key",
        "TWELVEDATA_API_KEY": "td-test-key",
    }
    worker = Worker("filesystem://", tmp_path / "worker.log", **env)
    beat_log = tmp_path / "beat.log"
    started: list = [worker]

    def beat() -> None:
        log = open(beat_log, "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            [CELERY, "-A", "config", "beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")],
            cwd=BASE_DIR, env={**os.environ, **worker.env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(process)

    yield worker, beat, beat_log
    for process in started:
        process.stop() if isinstance(process, Worker) else process.terminate()
        if not isinstance(process, Worker):
            process.wait(timeout=20)


def test_the_beat_settles_a_round_at_settle_at_from_the_price_sources(vendors, processes, users):
    worker, start_beat, beat_log = processes
    vendors.set(STOOQ_CLOSE, stooq_daily({PREVIOUS: "20950.25", DAY: "21010.75"}))
    vendors.set(AV_QUERY, alphavantage_daily({PREVIOUS: "20950.25", DAY: "21010.75"}))
    vendors.set(TD_SERIES, twelvedata_series({PREVIOUS: "20950.25", DAY: "21999.00"}))  # the wrong one
    up, down = users(2)
    round_, _ = round_open(code="20261130")
    place_bet(round_, up, "UP", 2_000_000)
    place_bet(round_, down, "DOWN", 2_000_000)
    round_lock(code="20261130")
    settle_at = timezone.now() + timedelta(seconds=8)
    Round.objects.filter(pk=round_.pk).update(settle_at=settle_at)
    call_command("sync_schedule")
    PeriodicTask.objects.exclude(name="rounds-lifecycle-tick").update(enabled=False)
    fast, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="rounds-lifecycle-tick").update(interval=fast)

    worker.start()
    start_beat()
    _wait(lambda: Round.objects.get(pk=round_.pk).status == Round.Status.SETTLED, "the beat to settle", timeout=90)

    round_.refresh_from_db()
    assert (round_.result, round_.close_price, round_.reference_price) == (
        "UP", Decimal("21010.750000"), Decimal("20950.250000"),
    )  # fmt: skip
    assert (round_.close_source, round_.reference_source, round_.settled_by) == ("quorum", "quorum", None)
    assert round_.settled_at >= settle_at  # not a tick earlier
    settled = AuditEvent.objects.get(action="round.settle", object_id="20261130")
    assert (settled.source, settled.reason) == ("beat", "automatic settlement from the official close")
    close = CloseCheck.objects.get(date=DAY)
    assert {q.source: q.reason for q in close.quotes.all()} == {
        "alphavantage": "", "stooq": "", "twelvedata": "deviation",
    }  # fmt: skip
    assert b"rounds.lifecycle_tick" in beat_log.read_bytes()  # the beat sent it, no one else
