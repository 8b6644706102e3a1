"""Side effects (tasks queued, alerts sent, emails) happen only after the commit, never after a rollback.

Real transactions (transaction=True): the on-commit hooks fire at the real COMMIT, as in production.
"""

import pytest
from django.core import mail
from django.db import transaction

from audit.models import AuditEvent
from ledger.selectors import user_balance_u
from ops.alerts import Finding, alert_raise
from ops.models import Alert, OpsSwitch
from ops.services import ops_emergency_stop
from ops.tasks import evaluate_alerts
from tests.factories import UserFactory, fund
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_fail, withdrawal_request

pytestmark = [pytest.mark.money, pytest.mark.django_db(transaction=True)]

ADDRESS = "0x" + "ef" * 20


class Rollback(Exception):
    pass


@pytest.fixture
def queued(monkeypatch):
    """Record evaluate_alerts being queued (by task object or by name) instead of sending it to a broker."""
    calls: list[str] = []
    monkeypatch.setattr(evaluate_alerts, "apply_async", lambda *a, **k: calls.append("evaluate_alerts"))
    return calls


def test_emergency_stop_queues_the_alert_task_only_after_commit(queued):
    # when: inside the transaction, before the commit
    with transaction.atomic():
        ops_emergency_stop(active=True, reason="drill", source="cli")
        assert queued == []  # not yet: the switch is not visible to a worker
    # then: after the commit, exactly once
    assert queued == ["evaluate_alerts"]
    assert OpsSwitch.objects.get(name=OpsSwitch.Name.EMERGENCY_STOP).active


def test_emergency_stop_rolled_back_queues_nothing_and_writes_nothing(queued):
    audits = AuditEvent.objects.count()
    with pytest.raises(Rollback), transaction.atomic():
        ops_emergency_stop(active=True, reason="drill", source="cli")
        raise Rollback
    assert queued == []
    assert not OpsSwitch.objects.filter(name=OpsSwitch.Name.EMERGENCY_STOP, active=True).exists()
    assert AuditEvent.objects.count() == audits


def test_alert_is_dispatched_after_commit_and_never_after_rollback(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr("ops.alerts.alert_dispatch", lambda message: sent.append(message["summary"]) or ["ok"])
    # rollback: no alert row, nothing sent
    with pytest.raises(Rollback), transaction.atomic():
        alert_raise(finding=Finding(key="proof:rollback", severity="P1", summary="rolled back"))
        raise Rollback
    assert sent == [] and not Alert.objects.filter(key="proof:rollback").exists()
    # commit: sent once, after the commit
    with transaction.atomic():
        alert_raise(finding=Finding(key="proof:commit", severity="P1", summary="committed"))
        assert sent == []
    assert sent == ["committed"]


def test_withdrawal_failure_email_only_after_commit_never_after_rollback():
    # given
    bettor = UserFactory()
    fund(bettor, 5_000_000)
    withdrawal, _ = withdrawal_request(user=bettor, amount_u=2_000_000, destination=ADDRESS, source="api")
    mail.outbox.clear()

    # when: the failure is rolled back by an outer transaction
    with pytest.raises(Rollback), transaction.atomic():
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="sanctioned address", source="cli")
        raise Rollback

    # then: no email, no refund, still QUEUED
    assert mail.outbox == []
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    assert user_balance_u(user_id=bettor.pk) == 3_000_000

    # when: committed
    with transaction.atomic():
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="sanctioned address", source="cli")
        assert mail.outbox == []

    # then: one email, the refund
    assert [message.to for message in mail.outbox] == [[bettor.email]]
    assert user_balance_u(user_id=bettor.pk) == 5_000_000
