"""The breaker watches the manual's KPIs: 5xx rate, p95 latency, database connections, settlement time."""

from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone

from ops import kpi
from ops.models import OpsSwitch
from ops.rules import breaker_trips, kpi_readings
from ops.services import circuit_breaker_evaluate
from tests.factories import role_user

pytestmark = [pytest.mark.django_db, pytest.mark.money]


def _drive(client: Client, *, ok: int, errors: int) -> None:
    for _ in range(ok):
        assert client.get("/api/v1/kpi-test/ok").status_code == 200
    for _ in range(errors):
        assert client.get("/api/v1/kpi-test/boom").status_code == 500


@override_settings(ROOT_URLCONF="tests.ops.kpi_urls", OPS_KPI_FLUSH_SECONDS=0)
def test_5xx_past_one_percent_opens_the_breaker_with_its_reason():
    client = Client(raise_request_exception=False)
    _drive(client, ok=198, errors=2)  # 1.0 %: not above the limit
    assert circuit_breaker_evaluate(source="beat") is None
    _drive(client, ok=0, errors=1)  # 3 of 201 = 1.49 %
    trip = circuit_breaker_evaluate(source="beat")
    assert trip is not None and (trip.rule, trip.severity) == ("api_error_rate", "P1")
    switch = OpsSwitch.objects.get(name="circuit_breaker")
    assert switch.active and switch.rule == "api_error_rate"
    assert switch.reason == ("api_error_rate: [P1] 3 of 201 API responses were 5xx in 300 s (1.5% > 1%)")


@override_settings(ROOT_URLCONF="tests.ops.kpi_urls", OPS_KPI_FLUSH_SECONDS=0)
def test_too_few_requests_never_trip():
    _drive(Client(raise_request_exception=False), ok=10, errors=5)
    assert [r.over for r in kpi_readings(timezone.now()) if r.rule == "api_error_rate"] == [False]


def test_counts_are_shared_not_per_process():
    # What another web process flushed is in the cache; this process adds its own: the rule sums both.
    now = timezone.now().timestamp()
    bucket = int(now) // kpi.BUCKET_SECONDS
    cache.set(f"kpi:{bucket}:requests", 300)
    cache.set(f"kpi:{bucket}:le100", 280)
    cache.set(f"kpi:{bucket - 1}:requests", 100)
    cache.set(f"kpi:{bucket - 1}:le1000", 100)  # 100 slow responses ten seconds earlier
    cache.set(f"kpi:{bucket - 100}:requests", 10_000)  # outside the 300 s window
    with override_settings(OPS_KPI_FLUSH_SECONDS=0):
        kpi.kpi_request_record(status=200, seconds=0.01, now=now)
    api = kpi.api_kpis(window_seconds=300, now=now)
    assert (api.requests, api.errors, api.at_most_ms[25], api.at_most_ms[100]) == (401, 0, 1, 280)
    # 120 of 401 within 500 ms is missing: p95 is above 500 ms -> the P2 latency rule
    [latency] = [r for r in kpi_readings(datetime.fromtimestamp(now, tz=UTC)) if r.rule == "api_latency"]
    assert (latency.over, latency.severity, latency.value) == (True, "P2", "≤ 1000 ms")


def test_pending_counts_wait_for_the_flush():
    with override_settings(OPS_KPI_FLUSH_SECONDS=3600):
        now = timezone.now().timestamp()
        kpi._flushed_at = now  # flushed a moment ago
        kpi.kpi_request_record(status=500, seconds=0.01, now=now)
        assert kpi.api_kpis(window_seconds=300, now=now).requests == 0  # no cache write per request
        kpi.kpi_request_record(status=200, seconds=0.01, now=now + kpi.BUCKET_SECONDS)  # the bucket ended
        assert kpi.api_kpis(window_seconds=300, now=now + kpi.BUCKET_SECONDS).errors == 1


def test_a_slow_settlement_trips_and_shows_on_the_dashboard(client):
    kpi.settlement_duration_record(61.5)
    trips = breaker_trips(now=timezone.now())
    assert [(t.rule, t.severity) for t in trips] == [("settlement_slow", "P1")]
    assert "61.5 s (> 60 s)" in trips[0].reason
    client.force_login(role_user("operator"))
    html = client.get("/admin/").content.decode()
    assert "Last settlement (24 h)" in html and "61.5 s" in html and "P1" in html


@pytest.mark.postgres
@override_settings(OPS_KPI_DB_POOL_MAX=1)
def test_database_connections_above_ninety_percent_trip():
    [pool] = [r for r in kpi_readings(timezone.now()) if r.rule == "db_pool"]
    assert (pool.over, pool.severity) == (True, "P1") and " of 1 (" in pool.value
