"""/metrics under real gunicorn with two workers: counters are summed across workers (multiprocess mode)
and the business gauges equal `tvl`. PostgreSQL only: the workers must see the test's committed data."""

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from ledger.selectors import tvl_get
from tests.factories import UserFactory, fund
from tests.ops.conftest import make_round
from withdrawals.services import withdrawal_request

TOKEN = "gunicorn-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
        "OPS_TOKEN": TOKEN,
        "CELERY_BROKER_URL": "memory://",
        "VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_PIDFILE": str(tmp_path / "gunicorn.pid"),
        "DEBUG": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "gunicorn.log", "w"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text()[-2000:])
        yield base, tmp_path / "prometheus"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def healthz_count_per_file(folder: Path) -> list[float]:
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = []
    for path in sorted(folder.glob("counter_*.db")):
        total = 0.0
        raw = MultiProcessCollector._read_metrics([str(path)])
        for metric in MultiProcessCollector._accumulate_metrics(raw, True):
            for sample in metric.samples:
                if (
                    sample.name == "django_http_requests_total_by_view_transport_method_total"
                    and sample.labels.get("view") == "ops-runbook:healthz"
                ):
                    total += sample.value
        counts.append(total)
    return counts


def gauges(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def healthz_total(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("django_http_requests_total_by_view_transport_method_total{")
        and 'view="ops-runbook:healthz"' in line
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_metrics_are_summed_across_two_gunicorn_workers(gunicorn):
    base, folder = gunicorn
    # given money in the system (committed, so the workers see it)
    bettor = UserFactory()
    fund(bettor, 50_000_000)
    withdrawal_request(user=bettor, amount_u=5_000_000, source="api")
    make_round("20250908", up_u=0, down_u=0)
    tvl = tvl_get()

    metrics_url, auth = f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"}
    baseline = healthz_total(requests.get(metrics_url, headers=auth, timeout=10).text)  # the start-up probes

    # when liveness requests are spread over the two workers (batches until both have served some)
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            statuses = list(pool.map(lambda _: requests.get(f"{base}/healthz", timeout=10).status_code, range(40)))
            assert statuses == [200] * 40
            sent += 40
            if len([count for count in healthz_count_per_file(folder) if count]) == 2:
                break
    text = requests.get(metrics_url, headers=auth, timeout=10).text

    # then each worker counted its own share, and /metrics reports the sum of both
    per_worker = [count for count in healthz_count_per_file(folder) if count]
    assert len(per_worker) == 2
    assert sum(per_worker) == baseline + sent
    assert healthz_total(text) == baseline + sent
    # and the business gauges equal tvl
    values = gauges(text)
    assert values["betting_tvl_cash_u"] == tvl.cash_u
    assert values["betting_tvl_pending_withdrawals_u"] == tvl.pending_withdrawals_u
    assert values["betting_tvl_locked_u"] == values["tvl_locked_u"] == tvl.locked_u
    assert (tvl.cash_u, tvl.pending_withdrawals_u) == (45_000_000, 5_000_000)
    # and without the token /metrics is refused
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
