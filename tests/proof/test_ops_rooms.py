"""Ops sits on top and each rule is defined once (issue "Rooms and doors", ops' part).

- An overdue round has one definition (rounds.selectors.rounds_overdue) and one grace
  (ROUND_SETTLE_GRACE_SECONDS): the beat, the alerts, the circuit breaker and /health agree to the second.
- The alert and breaker rules only read: running them writes no row.
- `--actor EMAIL` on the commands that change state: an unknown email is a sentence and changes
  nothing; an operator is checked and named in the audit log; finance is refused the emergency stop.
- The emergency stop answers the same status and code from bets and from withdrawal processing.
"""

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from betting.services import bet_place
from common.errors import ApplicationError
from ledger.models import Account
from ops.counters import event_count_add
from ops.health import check_settlement
from ops.models import Alert, EventCount, OpsSwitch
from ops.rules import alert_findings, breaker_trips
from ops.selectors import switch_get
from ops.services import circuit_breaker_evaluate, ops_emergency_stop
from rounds.models import Round
from rounds.selectors import rounds_overdue
from rounds.services import round_lifecycle_tick
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund, role_user
from tests.ops.conftest import make_round
from withdrawals.services import withdrawal_request, withdrawals_process

pytestmark = pytest.mark.django_db

ADDRESS = "0x" + "ab" * 20
# Friday 2025-09-05, 16:05 New York: after the close, so the beat opens and locks nothing then.
SETTLE_AT = dt.datetime(2025, 9, 5, 20, 5, tzinfo=dt.UTC)


def _overdue_everywhere(now: dt.datetime) -> dict[str, bool]:
    """Does each consumer of the rule see round 20250905 as overdue at `now`?"""
    with time_machine.travel(now, tick=False):
        health = check_settlement()
    return {
        "selector": [row.code for row in rounds_overdue(now=now)] == ["20250905"],
        "alert": any(f.key == "settlement_overdue:20250905" for f in alert_findings(now=now)),
        "breaker": any(t.rule == "settlement_overdue" for t in breaker_trips(now=now)),
        "health": not health.ok and health.data["overdue"] == ["20250905"],
    }


@pytest.mark.parametrize("grace_seconds", [300, 3600])
def test_one_overdue_rule_exact_to_the_second_for_selector_alerts_breaker_health_and_beat(settings, grace_seconds):
    # given one grace setting and a LOCKED round without an official close
    settings.ROUND_SETTLE_GRACE_SECONDS = grace_seconds
    assert not hasattr(settings, "OPS_SETTLEMENT_GRACE_SECONDS")  # the second grace is gone
    make_round("20250905", status=Round.Status.LOCKED, lock_at=SETTLE_AT - dt.timedelta(hours=1), settle_at=SETTLE_AT)
    grace = dt.timedelta(seconds=grace_seconds)
    before, after = SETTLE_AT + grace - dt.timedelta(seconds=1), SETTLE_AT + grace + dt.timedelta(seconds=1)

    # then one second before the end of the grace nobody calls it overdue, and the beat keeps waiting
    assert _overdue_everywhere(before) == {"selector": False, "alert": False, "breaker": False, "health": False}
    report = round_lifecycle_tick(now=before)
    assert (report.waiting_for_close, report.overdue) == (["20250905"], [])
    assert Round.objects.get(code="20250905").overdue_since is None

    # and one second after it everybody does, and the beat marks it for a human (never voids it)
    assert _overdue_everywhere(after) == {"selector": True, "alert": True, "breaker": True, "health": True}
    report = round_lifecycle_tick(now=after)
    assert (report.waiting_for_close, report.overdue) == ([], ["20250905"])
    round_ = Round.objects.get(code="20250905")
    assert (round_.status, round_.overdue_since) == (Round.Status.LOCKED, after)
    assert [row.marked for row in rounds_overdue(now=after)] == [True]


def test_validate_config_names_the_retired_grace_setting(settings, capsys, monkeypatch):
    monkeypatch.setenv("OPS_SETTLEMENT_GRACE_SECONDS", "3600")
    with pytest.raises(CommandError):
        call_command("validate_config", "--no-connect")
    out = capsys.readouterr().out
    assert "OPS_SETTLEMENT_GRACE_SECONDS is set in the environment but no longer used" in out
    monkeypatch.delenv("OPS_SETTLEMENT_GRACE_SECONDS")
    call_command("validate_config", "--no-connect")


def _rows() -> dict[str, int]:
    return {
        "alerts": Alert.objects.count(),
        "audit": AuditEvent.objects.count(),
        "switches_on": OpsSwitch.objects.filter(active=True).count(),
        "event_counts": EventCount.objects.count(),
        "rounds_marked": Round.objects.filter(overdue_since__isnull=False).count(),
    }


def test_the_alert_and_breaker_rules_write_nothing(settings):
    # given conditions that trip every kind of rule: an overdue round, a broken ledger, a rejection spike,
    # a whale, a stale beat, the emergency stop on
    settings.OPS_BREAKER_REJECTION_MIN_COUNT = 1
    settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = 1
    now = SETTLE_AT + dt.timedelta(hours=3)
    make_round("20250905", status=Round.Status.LOCKED, lock_at=SETTLE_AT, settle_at=SETTLE_AT)
    Account.objects.filter(code=Account.HOUSE).update(balance_u=7)
    event_count_add(name="bet_rejected", count=5, at=now)
    ops_emergency_stop(active=True, reason="drill", source="cli")
    before = _rows()

    # when every rule runs
    with CaptureQueriesContext(connection) as queries:
        findings = alert_findings(now=now)
        trips = breaker_trips(now=now)

    # then they found it all and wrote no row: every statement was a read
    assert {f.rule for f in findings} >= {"settlement_overdue", "ledger_imbalance", "emergency_stop", "beat_stale"}
    assert {t.rule for t in trips} >= {"ledger_audit", "settlement_overdue", "bet_rejections"}
    statements = [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries]
    assert statements and set(statements) <= {"SELECT", "WITH"}, statements
    assert _rows() == before
    # the state change they lead to is a service: it opens the breaker, audited
    assert circuit_breaker_evaluate(now=now).rule == "ledger_audit"
    assert switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER).active


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_actor_unknown_email_is_a_sentence_and_changes_nothing():
    audits = AuditEvent.objects.count()
    for args in (
        ["emergency_stop", "on", "--reason", "drill"],
        ["maintenance", "on", "--reason", "drill"],
        ["circuit_breaker", "reset", "--reason", "checked"],
        ["set_close", "--symbol", "NDX", "--date", "2025-09-08", "--price", "1"],
    ):
        with pytest.raises(CommandError, match="--actor 'nobody@example.com' is not the email of any account"):
            _run(*args, "--actor", "nobody@example.com")
    assert AuditEvent.objects.count() == audits
    assert not OpsSwitch.objects.filter(active=True).exists()


def test_actor_operator_is_checked_and_named_in_the_audit_log():
    operator = role_user("operator", email="op@example.com")
    _run("emergency_stop", "on", "--reason", "drill", "--actor", "OP@example.com")  # email case does not matter
    event = AuditEvent.objects.get(action="ops.emergency_stop.on")
    assert (event.actor, event.actor_label, event.source) == (operator, "op@example.com", "cli")
    assert switch_get(name=OpsSwitch.Name.EMERGENCY_STOP).changed_by == operator
    # without --actor the OS user that ran the command is recorded, never a blank actor
    _run("emergency_stop", "off")
    event = AuditEvent.objects.get(action="ops.emergency_stop.off")
    assert event.actor is None and event.actor_label.startswith("os:") and len(event.actor_label) > 3


@pytest.mark.parametrize(
    "args",
    [
        ["emergency_stop", "on", "--reason", "drill"],
        ["maintenance", "on", "--reason", "drill"],
        ["circuit_breaker", "reset", "--reason", "checked"],
    ],
)
def test_actor_finance_is_refused_the_operators_switches(args):
    role_user("finance", email="fin@example.com")
    audits = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=r"permission_denied"):
        _run(*args, "--actor", "fin@example.com")
    assert AuditEvent.objects.count() == audits
    assert not OpsSwitch.objects.filter(active=True).exists()


@pytest.mark.django_db(transaction=True)  # SQLite's online backup waits for the test's open transaction
def test_actor_on_backup_is_checked(tmp_path):
    role_user("finance", email="fin@example.com")
    with pytest.raises(CommandError, match=r"permission_denied"):
        _run("backup", "--dir", str(tmp_path), "--actor", "fin@example.com")
    assert list(tmp_path.iterdir()) == []
    operator = role_user("operator", email="op@example.com")
    _run("backup", "--dir", str(tmp_path), "--actor", "op@example.com", "--reason", "before the upgrade")
    assert AuditEvent.objects.get(action="ops.backup").actor == operator


def test_emergency_stop_answers_the_same_status_and_code_from_bets_and_withdrawals():
    # given a funded bettor, an open round, a queued withdrawal, and the emergency stop on
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    round_create("20250908")
    withdrawal_request(user=bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    ops_emergency_stop(active=True, reason="drill", source="cli")

    # when a bet is placed and the withdrawals are processed
    refusals = []
    for attempt in (
        lambda: bet_place(user=bettor, side="UP", stake_u=1_000_000, idempotency_key="k-1", source="api"),
        lambda: withdrawals_process(source="cli"),
    ):
        with pytest.raises(ApplicationError) as raised:
            attempt()
        refusals.append((raised.value.status, raised.value.code))

    # then both answer 423 `emergency_stop`
    assert refusals == [(423, "emergency_stop"), (423, "emergency_stop")]
