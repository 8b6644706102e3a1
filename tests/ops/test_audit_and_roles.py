import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from ops.roles import roles_sync
from ops.services import circuit_breaker_open, ops_emergency_stop
from tests.ops.conftest import restore_confirmed


@pytest.mark.django_db
def test_audit_log_since_lists_the_switches(capsys):
    ops_emergency_stop(active=True, reason="drill", source="cli")
    ops_emergency_stop(active=False, source="cli")
    circuit_breaker_open(rule="house_loss", reason="lost", source="beat")

    call_command("audit_log", "--since", "1h")
    out = capsys.readouterr().out
    assert "ops.emergency_stop.on ops_switch:emergency_stop reason='drill'" in out
    assert "ops.emergency_stop.off" in out
    assert "ops.circuit_breaker.open" in out
    assert out.strip().endswith("3 event(s).")
    # times in America/New_York with the zone named
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T cli ", out), out

    call_command("audit_log", "--since", "2000-01-01", "--action", "ops.circuit_breaker")
    assert capsys.readouterr().out.strip().endswith("1 event(s).")


def test_audit_log_refuses_a_bad_since():
    with pytest.raises(CommandError, match="--since"):
        call_command("audit_log", "--since", "yesterday-ish")


@pytest.mark.django_db
def test_roles_are_synced_idempotently():
    first = roles_sync()
    second = roles_sync()
    assert first == second
    assert set(Group.objects.values_list("name", flat=True)) >= {"operator", "finance", "auditor"}
    operator = set(Group.objects.get(name="operator").permissions.values_list("codename", flat=True))
    finance = set(Group.objects.get(name="finance").permissions.values_list("codename", flat=True))
    auditor = set(Group.objects.get(name="auditor").permissions.values_list("codename", flat=True))
    assert {"lock_round", "settle_round", "void_round", "change_opsswitch"} <= operator
    assert "manual_adjust" in finance and "manual_adjust" not in operator
    assert auditor and all(codename.startswith("view_") for codename in auditor)
    assert "view_auditevent" in auditor


@pytest.mark.django_db(transaction=True)
def test_every_ops_command_that_changes_state_leaves_exactly_one_audit_event(tmp_path):
    from audit.models import AuditEvent

    steps = [
        (["emergency_stop", "on", "--reason", "drill"], "ops.emergency_stop.on"),
        (["emergency_stop", "off"], "ops.emergency_stop.off"),
        (["backup", "--dir", str(tmp_path)], "ops.backup"),
    ]
    for args, action in steps:
        before = AuditEvent.objects.count()
        call_command(*args)
        assert AuditEvent.objects.count() == before + 1, args
        assert AuditEvent.objects.order_by("-id").first().action == action
    circuit_breaker_open(rule="house_loss", reason="lost", source="beat")
    before = AuditEvent.objects.count()
    call_command("circuit_breaker", "reset", "--reason", "checked")
    assert AuditEvent.objects.count() == before + 1
    before = AuditEvent.objects.count()
    call_command("maintenance", "on", "--reason", "drill")
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.order_by("-id").first().action == "ops.maintenance.on"
    backup = next(p for p in tmp_path.iterdir() if p.suffix == ".sqlite3")
    restore_confirmed(backup)
    assert AuditEvent.objects.filter(action="ops.restore").count() == 1


@pytest.mark.django_db
def test_beat_tasks_run():
    from ops.selectors import heartbeat_age_seconds
    from ops.tasks import beat_heartbeat, evaluate_alerts, evaluate_circuit_breaker

    beat_heartbeat.delay()
    assert heartbeat_age_seconds() < 60
    assert evaluate_circuit_breaker.delay().get() == ""
    assert evaluate_alerts.delay().get() == 0
