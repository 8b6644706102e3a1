"""What the type checker found and its fixes changed (issue "Types the checker can hold").

- A switch flipped or an audit row written with no Django user names who did it, never a blank or
  "system" for a person at the shell: the OS user of a command run without --actor, the ops token,
  the beat (ops.reports.switch_changed_by, AuditEvent.actor_name).
- A ledger line has one shape, `Line`: a bare tuple is refused before anything is written.
- The DRF handler reads `.detail` only off DRF's own exceptions.
"""

import getpass

import pytest
from django.core.management import call_command
from django.db import transaction

from audit.events import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from ledger.models import LedgerBatch, LedgerEntry
from ledger.services import Line, Posting, ledger_post, ledger_post_from_sql, ledger_post_many
from ops.models import OpsSwitch
from ops.reports import switch_changed_by
from ops.selectors import switch_get
from ops.services import ops_emergency_stop
from tests.factories import role_user

pytestmark = pytest.mark.django_db


def _os_user() -> str:
    return f"os:{getpass.getuser()}"


def test_a_switch_flipped_at_the_shell_without_actor_names_the_os_user(capsys):
    call_command("emergency_stop", "on", "--reason", "drill")
    call_command("emergency_stop", "status")
    out = capsys.readouterr().out
    assert f"by {_os_user()})" in out  # was "by system": the person at the shell went unnamed
    assert switch_changed_by(switch=switch_get(name=OpsSwitch.Name.EMERGENCY_STOP)) == _os_user()


def test_a_switch_flipped_by_a_person_names_the_person_and_a_never_flipped_one_nobody(capsys):
    operator = role_user("operator", email="op@example.com")
    assert switch_changed_by(switch=switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER)) is None
    call_command("circuit_breaker", "status")
    assert "never switched, by system" in capsys.readouterr().out
    ops_emergency_stop(active=True, reason="drill", actor=operator, source="admin")
    assert switch_changed_by(switch=switch_get(name=OpsSwitch.Name.EMERGENCY_STOP)) == "op@example.com"


def test_the_ops_api_says_who_flipped_a_switch_with_the_ops_token(client, settings):
    settings.OPS_TOKEN = "test-ops-token"
    auth = {"HTTP_AUTHORIZATION": "Bearer test-ops-token"}
    response = client.post(
        "/api/v1/ops/emergency-stop", {"active": True, "reason": "api drill"}, content_type="application/json", **auth
    )
    assert response.status_code == 200
    assert response.json()["changed_by"] == "ops-token"  # was null: a machine credential, still named
    assert client.get("/api/v1/ops/circuit-breaker", **auth).json()["changed_by"] is None


def test_the_audit_log_names_the_beat_for_a_row_without_a_person(capsys):
    with transaction.atomic():
        audit_record(action=AuditAction.ROUND_LOCK, source="beat", object_type="round", object_id="R1")
    call_command("audit_log")
    line = next(row for row in capsys.readouterr().out.splitlines() if "round:R1" in row)
    assert " beat   beat " in line  # was "-": the beat acted and is named
    event = AuditEvent.objects.get(object_id="R1")
    assert (event.actor_name(), str(event).split()[2]) == ("beat", "beat")


def test_the_audit_log_names_the_os_user_of_a_command(capsys):
    call_command("emergency_stop", "on", "--reason", "drill")
    call_command("audit_log", "--action", "ops.emergency_stop")
    assert _os_user() in capsys.readouterr().out


@pytest.mark.money
@pytest.mark.parametrize("post", ["python", "sql", "many"])
def test_a_ledger_line_that_is_not_a_line_is_refused_and_nothing_is_written(post):
    batches, entries = LedgerBatch.objects.count(), LedgerEntry.objects.count()
    lines = [Line("house", -5), ("external:deposits", 5)]
    with pytest.raises(TypeError, match=r"A ledger line is a ledger.services.Line, not tuple"):
        if post == "python":
            ledger_post(lines, ref_type="t", ref_id="x", idempotency_key="typed-line-py")
        elif post == "many":
            ledger_post_many([Posting(lines, ref_type="t", ref_id="x", idempotency_key="typed-line-many")])
        else:
            ledger_post_from_sql(
                select_sql="SELECT 'house', 0 WHERE 1 = 0", lines=lines, ref_type="t", ref_id="x",
                idempotency_key="typed-line-sql",
            )  # fmt: skip
    assert (LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (batches, entries)
