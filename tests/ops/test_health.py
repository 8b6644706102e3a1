import datetime as dt

import pytest
from django.utils import timezone

from ops import health
from ops.services import heartbeat_beat
from rounds.models import Round
from tests.ops.conftest import make_round


def test_healthz_is_200_without_database(client):
    # no django_db mark: any database access here would fail the test
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_is_200_when_every_check_passes(client, fresh_heartbeat):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": True, "broker": True, "beat": True, "settlement": True, "migrations": True}


@pytest.mark.django_db
def test_health_is_503_naming_a_stale_beat(client):
    heartbeat_beat(name="beat", at=timezone.now() - dt.timedelta(minutes=10))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["beat"]


@pytest.mark.django_db
def test_health_is_503_when_beat_never_ran(client):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["beat"]


@pytest.mark.django_db
@pytest.mark.parametrize("last_beat_minutes_ago", [None, 600])  # never, or long before this start (last night)
def test_beat_is_starting_not_failed_during_the_grace_after_the_web_process_starts(
    client, settings, monkeypatch, last_beat_minutes_ago
):
    # `make run`: web answers before beat's first heartbeat; the manual's `curl -f /health` must not cry wolf
    settings.OPS_BEAT_STARTUP_GRACE_SECONDS = 90
    now = timezone.now()
    if last_beat_minutes_ago is not None:
        heartbeat_beat(name="beat", at=now - dt.timedelta(minutes=last_beat_minutes_ago))
    monkeypatch.setattr(health, "PROCESS_STARTED_AT", now - dt.timedelta(seconds=20))
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["starting"], body["checks"]["beat"]) == ("starting", ["beat"], True)
    assert "failed" not in body

    # after the grace, the same beat fails
    monkeypatch.setattr(health, "PROCESS_STARTED_AT", now - dt.timedelta(seconds=91))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["beat"]
    assert "starting" not in response.json()


@pytest.mark.django_db
def test_a_beat_that_beat_since_the_start_and_went_stale_fails_even_within_the_grace(client, settings, monkeypatch):
    settings.OPS_BEAT_STARTUP_GRACE_SECONDS = 3600
    settings.OPS_HEARTBEAT_STALE_SECONDS = 60
    now = timezone.now()
    monkeypatch.setattr(health, "PROCESS_STARTED_AT", now - dt.timedelta(minutes=30))
    heartbeat_beat(name="beat", at=now - dt.timedelta(minutes=10))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["beat"]


@pytest.mark.django_db
def test_health_is_503_naming_an_overdue_settlement(client, fresh_heartbeat):
    now = timezone.now()
    make_round("20250905", status=Round.Status.LOCKED, settle_at=now - dt.timedelta(hours=3))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["settlement"]


@pytest.mark.django_db
def test_health_is_503_when_broker_unreachable(client, fresh_heartbeat, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


@pytest.mark.django_db
def test_filesystem_broker_is_ok_when_its_folder_is_writable(client, fresh_heartbeat, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    assert client.get("/health").status_code == 200
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    assert client.get("/health").json()["failed"] == ["broker"]


@pytest.mark.django_db
def test_health_is_503_when_the_database_fails(client, fresh_heartbeat, monkeypatch):
    from ops import health

    def broken_cursor():
        raise RuntimeError("database down")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/health")
    assert response.status_code == 503
    assert set(response.json()["failed"]) >= {"database"}


@pytest.mark.django_db
class TestDetailedHealth:
    url = "/api/v1/ops/health"

    def test_needs_the_token(self, client, ops_token):
        assert client.get(self.url).status_code == 401
        wrong = client.get(self.url, HTTP_AUTHORIZATION="Bearer nope")
        assert (wrong.status_code, wrong.json()["code"]) == (401, "authentication_failed")

    def test_token_gets_details(self, client, ops_token, fresh_heartbeat, funded_bettor):
        response = client.get(self.url, HTTP_AUTHORIZATION=f"Bearer {ops_token}")
        assert response.status_code == 200
        body = response.json()
        assert body["checks"]["database"]["ok"] is True
        assert body["tvl"] == {"locked_u": 0, "cash_u": 100_000_000, "pending_withdrawals_u": 0}
        assert body["emergency_stop"]["active"] is False

    def test_staff_session_gets_details(self, client, staff, fresh_heartbeat):
        client.force_login(staff)
        assert client.get(self.url).status_code == 200
