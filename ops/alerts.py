"""Alerts, the service: raise, refresh and resolve alerts (de-duplicated by key) and send them after commit.

What is wrong is decided by the read-only rules in ops.rules (severity P0 most severe … P3);
this module writes the ops_alerts rows and notifies. Routes come from settings: email
(ALERT_EMAIL_TO, Django mail) and a Slack-compatible webhook (ALERT_WEBHOOK_URL), each with a
minimum severity. An open alert is re-notified at most every ALERT_RENOTIFY_SECONDS; an alert
whose condition is gone is resolved.
"""

import logging
from collections.abc import Callable
from datetime import datetime

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from ops.exceptions import OpsError
from ops.models import Alert
from ops.rules import Finding, alert_findings

__all__ = ["Finding", "alert_dispatch", "alert_raise", "alert_send_test", "alerts_evaluate"]

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


# --- routes --------------------------------------------------------------------------------------


def _admits(minimum: str, severity: str) -> bool:
    return SEVERITY_RANK.get(severity, 3) <= SEVERITY_RANK.get(minimum, 3)


def route_email(message: dict) -> str:
    if not settings.ALERT_EMAIL_TO:
        return "email: no recipients (ALERT_EMAIL_TO)"
    if not _admits(settings.ALERT_EMAIL_MIN_SEVERITY, message["severity"]):
        return f"email: below {settings.ALERT_EMAIL_MIN_SEVERITY}, not sent"
    send_mail(
        subject=f"[{message['severity']}] Up/Down House: {message['key']}",
        message=f"{message['summary']}\n\nStatus: {message['status']}\nFirst seen: {message['first_seen_at']}\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=list(settings.ALERT_EMAIL_TO),
    )
    return f"email: sent to {', '.join(settings.ALERT_EMAIL_TO)}"


def route_webhook(message: dict) -> str:
    if not settings.ALERT_WEBHOOK_URL:
        return "webhook: no URL (ALERT_WEBHOOK_URL)"
    if not _admits(settings.ALERT_WEBHOOK_MIN_SEVERITY, message["severity"]):
        return f"webhook: below {settings.ALERT_WEBHOOK_MIN_SEVERITY}, not sent"
    body = {
        # Slack-compatible: `text` is what Slack shows; the rest is for other receivers.
        "text": f"[{message['severity']}] {message['summary']}",
        "severity": message["severity"],
        "key": message["key"],
        "status": message["status"],
    }
    response = requests.post(settings.ALERT_WEBHOOK_URL, json=body, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)
    response.raise_for_status()
    return f"webhook: HTTP {response.status_code}"


ROUTES: list[Callable[[dict], str]] = [route_email, route_webhook]


def alert_dispatch(message: dict) -> list[str]:
    """Send one alert to every route that admits its severity. A failing route is logged, never raised."""
    results = []
    for route in ROUTES:
        try:
            results.append(route(message))
        except Exception as exc:  # noqa: BLE001 - one broken route must not stop the others
            logger.exception("alert route %s failed", route.__name__)
            results.append(f"{route.__name__.removeprefix('route_')}: FAILED ({type(exc).__name__}: {exc})"[:200])
    return results


def _message(alert: Alert) -> dict:
    return {
        "key": alert.key,
        "severity": alert.severity,
        "summary": alert.summary,
        "status": alert.status,
        "first_seen_at": alert.first_seen_at.isoformat(),
    }


# --- services ------------------------------------------------------------------------------------


def alert_raise(
    *,
    finding: Finding,
    now: datetime | None = None,
    force: bool = False,
    results: list | None = None,
    send: bool = True,
) -> tuple[Alert, bool]:
    """Open or refresh the alert for `finding`; notify (after commit) when new, reopened, or due again."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(key=finding.key).first()
        if alert is None:
            alert = Alert(key=finding.key, first_seen_at=now)
            notify = True
        else:
            due = alert.last_notified_at is None or (now - alert.last_notified_at).total_seconds() >= (
                settings.ALERT_RENOTIFY_SECONDS
            )
            notify = force or alert.status == Alert.Status.RESOLVED or due
        if alert.status == Alert.Status.RESOLVED:
            alert.first_seen_at = now
        alert.rule = finding.rule
        alert.severity = finding.severity
        alert.summary = finding.summary
        alert.status = Alert.Status.OPEN
        alert.last_seen_at = now
        alert.resolved_at = None
        if notify:
            alert.last_notified_at = now
            alert.notify_count += 1
        alert.save()
        if notify and send:
            message = _message(alert)
            sink = results if results is not None else []
            transaction.on_commit(lambda: sink.extend(alert_dispatch(message)))
    return alert, notify


def alerts_evaluate(*, now: datetime | None = None) -> list[Alert]:
    """Run every rule (ops.rules); raise what is found, resolve rule alerts that are gone.

    Returns the notified alerts."""
    now = now or timezone.now()
    findings = alert_findings(now=now)
    notified = []
    for finding in findings:
        alert, notify = alert_raise(finding=finding, now=now)
        if notify:
            notified.append(alert)
    Alert.objects.filter(status=Alert.Status.OPEN).exclude(key__in=[f.key for f in findings]).exclude(
        rule="test"
    ).update(status=Alert.Status.RESOLVED, resolved_at=now)
    return notified


def alert_send_test(*, severity: str, now: datetime | None = None) -> list[str]:
    """Prove the routes: a one-off alert (rule "test") sent now, then marked resolved."""
    if severity not in SEVERITY_RANK:
        raise OpsError(f"Severity must be one of P0, P1, P2, P3, got {severity!r}.", code="invalid_severity")
    now = now or timezone.now()
    finding = Finding(f"test:{now:%Y%m%dT%H%M%S%f}", severity, f"Test alert ({severity}) from send_test_alert.")
    alert, _ = alert_raise(finding=finding, now=now, force=True, send=False)
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED, resolved_at=now)
    # Sent directly, not on commit: the operator wants to see what each route answered.
    return alert_dispatch(_message(alert))
