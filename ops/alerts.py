"""Alerts: rules with a severity (P0 most severe … P3), de-duplicated by key, sent after commit.

A new rule is one small function `(now) -> list[Finding]` added to RULES. Routes come from
settings: email (ALERT_EMAIL_TO, Django mail) and a Slack-compatible webhook
(ALERT_WEBHOOK_URL), each with a minimum severity. An open alert is re-notified at most
every ALERT_RENOTIFY_SECONDS; an alert whose condition is gone is resolved.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from ops.models import Alert, OpsSwitch

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


@dataclass(frozen=True)
class Finding:
    key: str
    severity: str
    summary: str

    @property
    def rule(self) -> str:
        return self.key.split(":", 1)[0]


# --- rules ---------------------------------------------------------------------------------------


def rule_settlement_overdue(now: datetime) -> list[Finding]:
    from rounds.models import Round

    limit = now - timedelta(seconds=settings.OPS_SETTLEMENT_GRACE_SECONDS)
    return [
        Finding(f"settlement_overdue:{code}", "P1", f"Round {code} is still LOCKED past settle_at + grace.")
        for code in Round.objects.filter(status=Round.Status.LOCKED, settle_at__lt=limit).values_list("code", flat=True)
    ]


def rule_auto_no_close(now: datetime) -> list[Finding]:
    from rounds.models import Round

    return [
        Finding(
            f"auto_no_close:{code}",
            "P1",
            f"AUTO settlement of round {code} found no accepted close: settle it by hand with a reason.",
        )
        for code in Round.objects.filter(status=Round.Status.LOCKED, overdue_since__isnull=False).values_list(
            "code", flat=True
        )
    ]


def rule_ledger_imbalance(now: datetime) -> list[Finding]:
    from ledger.selectors import ledger_audit

    report = ledger_audit()
    if report.ok:
        return []
    return [
        Finding(
            "ledger_imbalance",
            "P0",
            f"Ledger audit failed: {len(report.unbalanced_batches)} unbalanced batch(es), "
            f"{len(report.balance_mismatches)} cached balance mismatch(es).",
        )
    ]


def rule_emergency_stop(now: datetime) -> list[Finding]:
    reason = OpsSwitch.objects.filter(name=OpsSwitch.Name.EMERGENCY_STOP, active=True).values_list("reason", flat=True)
    return [Finding("emergency_stop", "P1", f"Emergency stop is ON: {text}") for text in reason]


def rule_breaker_open(now: datetime) -> list[Finding]:
    reason = OpsSwitch.objects.filter(name=OpsSwitch.Name.CIRCUIT_BREAKER, active=True).values_list("reason", flat=True)
    return [Finding("circuit_breaker", "P1", f"Circuit breaker is OPEN: {text}") for text in reason]


def rule_maintenance(now: datetime) -> list[Finding]:
    reason = OpsSwitch.objects.filter(name=OpsSwitch.Name.MAINTENANCE, active=True).values_list("reason", flat=True)
    return [Finding("maintenance", "P2", f"Maintenance mode is ON: {text}") for text in reason]


def rule_withdrawal_backlog(now: datetime) -> list[Finding]:
    from withdrawals.models import Withdrawal

    limit = now - timedelta(seconds=settings.ALERT_WITHDRAWAL_BACKLOG_SECONDS)
    waiting = Withdrawal.objects.filter(
        status__in=[Withdrawal.Status.QUEUED, Withdrawal.Status.PROCESSING], created_at__lt=limit
    ).count()
    if not waiting:
        return []
    return [Finding("withdrawal_backlog", "P2", f"{waiting} withdrawal(s) waiting longer than the backlog limit.")]


def rule_withdrawal_failure_burst(now: datetime) -> list[Finding]:
    from withdrawals.models import Withdrawal

    failed = Withdrawal.objects.filter(
        status=Withdrawal.Status.FAILED, updated_at__gte=now - timedelta(hours=1)
    ).count()
    if failed < settings.ALERT_WITHDRAWAL_FAILURE_BURST:
        return []
    return [Finding("withdrawal_failure_burst", "P1", f"{failed} withdrawals failed in the last hour.")]


def rule_beat_stale(now: datetime) -> list[Finding]:
    from ops.selectors import heartbeat_age_seconds

    age = heartbeat_age_seconds(now=now)
    if age is not None and age <= settings.OPS_HEARTBEAT_STALE_SECONDS:
        return []
    text = "no beat heartbeat recorded" if age is None else f"beat heartbeat is {int(age)} s old"
    return [Finding("beat_stale", "P1", f"Scheduler (beat) looks down: {text}.")]


RULES: list[Callable[[datetime], list[Finding]]] = [
    rule_settlement_overdue,
    rule_auto_no_close,
    rule_ledger_imbalance,
    rule_emergency_stop,
    rule_breaker_open,
    rule_maintenance,
    rule_withdrawal_backlog,
    rule_withdrawal_failure_burst,
    rule_beat_stale,
]


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
):
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
    """Run every rule; raise what is found, resolve rule alerts that are gone. Returns the notified alerts."""
    now = now or timezone.now()
    findings = []
    for rule in RULES:
        try:
            findings.extend(rule(now))
        except Exception:  # noqa: BLE001 - one broken rule must not silence the others
            logger.exception("alert rule %s failed", rule.__name__)
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
        from ops.exceptions import OpsError

        raise OpsError(f"Severity must be one of P0, P1, P2, P3, got {severity!r}.", code="invalid_severity")
    now = now or timezone.now()
    finding = Finding(f"test:{now:%Y%m%dT%H%M%S%f}", severity, f"Test alert ({severity}) from send_test_alert.")
    alert, _ = alert_raise(finding=finding, now=now, force=True, send=False)
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED, resolved_at=now)
    # Sent directly, not on commit: the operator wants to see what each route answered.
    return alert_dispatch(_message(alert))
