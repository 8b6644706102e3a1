import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from ops.alerts import Finding, alert_raise, alerts_evaluate
from ops.models import Alert
from ops.services import heartbeat_beat, ops_emergency_stop


@pytest.fixture
def webhook_stub():
    """A local Slack-like receiver on 127.0.0.1: records every JSON body it gets."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def routes(settings, webhook_stub):
    url, received = webhook_stub
    settings.ALERT_EMAIL_TO = ["oncall@example.com"]
    settings.ALERT_EMAIL_MIN_SEVERITY = "P1"
    settings.ALERT_WEBHOOK_URL = url
    settings.ALERT_WEBHOOK_MIN_SEVERITY = "P3"
    settings.ALERT_RENOTIFY_SECONDS = 3600
    settings.OPS_HEARTBEAT_STALE_SECONDS = 86400  # these tests move the clock; the beat is not their subject
    return received


@pytest.mark.django_db
def test_emergency_stop_alert_goes_to_both_routes_once(routes, django_capture_on_commit_callbacks):
    # given a running beat and the emergency stop on
    heartbeat_beat()
    ops_emergency_stop(active=True, reason="drill", source="cli")
    now = timezone.now()

    # when alerts are evaluated twice within the re-notify interval
    with django_capture_on_commit_callbacks(execute=True):
        first = alerts_evaluate(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        second = alerts_evaluate(now=now + dt.timedelta(minutes=5))

    # then one P1 alert was sent once to the webhook and once by email, not twice
    assert [a.key for a in first] == ["emergency_stop"]
    assert second == []
    assert len(routes) == 1
    assert routes[0]["text"] == "[P1] Emergency stop is ON: drill"
    assert routes[0]["severity"] == "P1"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "[P1] Up/Down House: emergency_stop"
    assert mail.outbox[0].to == ["oncall@example.com"]
    alert = Alert.objects.get(key="emergency_stop")
    assert (alert.status, alert.notify_count) == ("OPEN", 1)


@pytest.mark.django_db
def test_open_alert_is_renotified_after_the_interval_and_resolved_when_gone(routes, django_capture_on_commit_callbacks):
    heartbeat_beat()
    ops_emergency_stop(active=True, reason="drill", source="cli")
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        again = alerts_evaluate(now=now + dt.timedelta(seconds=3600))
    assert [a.key for a in again] == ["emergency_stop"]
    assert len(routes) == 2
    assert Alert.objects.get(key="emergency_stop").notify_count == 2

    # when the stop goes off, the alert resolves and nothing is sent
    ops_emergency_stop(active=False, source="cli")
    heartbeat_beat()
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_evaluate(now=timezone.now()) == []
    assert Alert.objects.get(key="emergency_stop").status == "RESOLVED"
    assert len(routes) == 2


@pytest.mark.django_db
def test_low_severity_goes_to_webhook_only(routes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(finding=Finding("withdrawal_backlog", "P2", "2 waiting"))
    assert [body["text"] for body in routes] == ["[P2] 2 waiting"]
    assert mail.outbox == []


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(routes):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        alert_raise(finding=Finding("ledger_imbalance", "P0", "broken"))
        raise RuntimeError("rollback")
    assert routes == [] and mail.outbox == []
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_a_broken_webhook_does_not_stop_email(settings, django_capture_on_commit_callbacks):
    settings.ALERT_EMAIL_TO = ["oncall@example.com"]
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:1/nothing-listens"
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 1
    results: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(finding=Finding("ledger_imbalance", "P0", "broken"), results=results)
    assert len(mail.outbox) == 1
    assert results[0] == "email: sent to oncall@example.com"
    assert results[1].startswith("webhook: FAILED")


@pytest.mark.django_db
def test_send_test_alert_proves_both_routes(routes, capsys):
    call_command("send_test_alert", "--severity", "P1")
    out = capsys.readouterr().out
    assert "email: sent to oncall@example.com" in out
    assert "webhook: HTTP 200" in out
    assert "Test alert P1 delivered by 2 route(s)." in out
    assert routes[0]["text"] == "[P1] Test alert (P1) from send_test_alert."
    assert len(mail.outbox) == 1
    assert Alert.objects.get().status == "RESOLVED"  # a test alert does not stay open


@pytest.mark.django_db
def test_beat_stale_rule_fires(settings, django_capture_on_commit_callbacks):
    heartbeat_beat(at=timezone.now() - dt.timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=True):
        notified = alerts_evaluate()
    assert [(a.key, a.severity) for a in notified] == [("beat_stale", "P1")]


@pytest.mark.django_db
def test_send_test_alert_says_when_no_route_is_configured(settings, capsys):
    settings.ALERT_EMAIL_TO = []
    settings.ALERT_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match=r"^No alert route is configured: .*\[no_alert_route\]$"):
        call_command("send_test_alert", "--severity", "P1")
    assert "dispatched" not in capsys.readouterr().out
    assert not Alert.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_send_test_alert_below_every_routes_severity_reached_no_one(settings, capsys):
    settings.ALERT_EMAIL_TO = ["oncall@example.com"]
    settings.ALERT_EMAIL_MIN_SEVERITY = "P1"
    settings.ALERT_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match=r"reached no route.*\[alert_not_delivered\]$"):
        call_command("send_test_alert", "--severity", "P3")
    assert "email: below P1, not sent" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_restore_alert_stays_open_for_a_day_through_the_minutely_evaluation():
    """Chaos seed 10 (make test, PostgreSQL): the minute's evaluation after `maintenance off` resolved the
    restore's P0 at once, because no rule found it. It stays open for 24 h, then resolves."""
    restored_at = timezone.now()
    alert_raise(finding=Finding("restore:20261201T220000", "P0", "Database RESTORED"), now=restored_at, force=True)
    alerts_evaluate(now=restored_at + dt.timedelta(minutes=1))
    assert Alert.objects.get(key="restore:20261201T220000").status == Alert.Status.OPEN
    alerts_evaluate(now=restored_at + dt.timedelta(hours=23, minutes=59))
    assert Alert.objects.get(key="restore:20261201T220000").status == Alert.Status.OPEN
    alerts_evaluate(now=restored_at + dt.timedelta(hours=24, minutes=1))
    assert Alert.objects.get(key="restore:20261201T220000").status == Alert.Status.RESOLVED
