import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from ops.models import OpsSwitch
from ops.selectors import Halt, betting_halt
from ops.services import circuit_breaker_open, ops_emergency_stop
from tests.factories import role_user


@pytest.mark.django_db
def test_emergency_stop_on_halts_betting_and_is_audited():
    # given nothing is halted
    assert betting_halt() is None

    # when the operator turns the stop on
    call_command("emergency_stop", "on", "--reason", "drill")

    # then betting halts with the reason, and one audit event says who/why
    assert betting_halt() == Halt("emergency_stop", "drill")
    events = list(AuditEvent.objects.filter(action__startswith="ops.emergency_stop"))
    assert len(events) == 1
    assert (events[0].action, events[0].source, events[0].reason) == ("ops.emergency_stop.on", "cli", "drill")
    assert events[0].before["active"] is False and events[0].after["active"] is True

    # when it is turned off again
    call_command("emergency_stop", "off")

    # then betting resumes, and the switch back is audited too
    assert betting_halt() is None
    assert AuditEvent.objects.filter(action="ops.emergency_stop.off", source="cli").count() == 1


@pytest.mark.django_db
def test_emergency_stop_on_without_reason_is_refused_and_writes_nothing():
    with pytest.raises(CommandError, match="reason"):
        call_command("emergency_stop", "on")
    assert betting_halt() is None
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_switching_to_the_same_state_changes_nothing():
    ops_emergency_stop(active=True, reason="first", source="cli")
    _, changed = ops_emergency_stop(active=True, reason="second", source="cli")
    assert changed is False
    assert betting_halt() == Halt("emergency_stop", "first")
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_emergency_stop_wins_over_the_breaker_in_betting_halt():
    circuit_breaker_open(rule="house_loss", reason="lost", source="beat")
    assert betting_halt() == Halt("circuit_breaker", "house_loss: lost")
    ops_emergency_stop(active=True, reason="drill", source="cli")
    assert betting_halt() == Halt("emergency_stop", "drill")


@pytest.mark.django_db
def test_betting_halt_is_one_query(django_assert_num_queries):
    ops_emergency_stop(active=True, reason="drill", source="cli")
    with django_assert_num_queries(1):
        betting_halt()


@pytest.mark.django_db
def test_status_prints_state(capsys):
    ops_emergency_stop(active=True, reason="drill", source="cli")
    call_command("emergency_stop", "status")
    assert "emergency_stop: ON — drill" in capsys.readouterr().out


@pytest.mark.django_db
class TestOpsApi:
    url = "/api/v1/ops/emergency-stop"

    def test_ops_token_switches_the_stop(self, client, ops_token):
        response = client.post(
            self.url,
            {"active": True, "reason": "api drill"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {ops_token}",
        )
        assert response.status_code == 200
        assert response.json()["active"] is True
        assert betting_halt() == Halt("emergency_stop", "api drill")
        assert AuditEvent.objects.get().source == "ops-token"  # the machine credential, no person

    def test_missing_or_wrong_token_is_401_and_changes_nothing(self, client, ops_token):
        missing = client.post(self.url, {"active": True, "reason": "x"}, content_type="application/json")
        wrong = client.post(
            self.url, {"active": True, "reason": "x"}, content_type="application/json", HTTP_AUTHORIZATION="Bearer no"
        )
        assert (missing.status_code, missing.json()["code"]) == (401, "not_authenticated")
        assert (wrong.status_code, wrong.json()["code"]) == (401, "authentication_failed")
        assert not OpsSwitch.objects.filter(active=True).exists()

    def test_bettor_is_refused(self, api, bettor, ops_token):
        response = api(bettor).post(self.url, {"active": True, "reason": "x"}, format="json")
        assert response.status_code == 403
        assert betting_halt() is None

    def test_operator_token_works_and_is_the_audited_actor(self, api):
        staff = role_user("operator")  # finance and the auditor are refused: tests/proof/test_staff_authority.py
        response = api(staff).post(self.url, {"active": True, "reason": "staff drill"}, format="json")
        assert response.status_code == 200
        assert AuditEvent.objects.get().actor == staff

    def test_on_without_reason_is_400(self, client, ops_token):
        response = client.post(
            self.url, {"active": True}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ops_token}"
        )
        assert (response.status_code, response.json()["code"]) == (400, "reason_required")
        assert betting_halt() is None


@pytest.mark.django_db
def test_admin_action_turns_the_stop_on_with_a_reason(client, django_user_model):
    from tests.factories import UserFactory

    admin_user = UserFactory(is_staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = "/admin/ops/opsswitch/"
    client.get(url)  # creates the two switch rows
    pk = OpsSwitch.objects.get(name="emergency_stop").pk
    # the first POST shows the reason form; the confirmation switches
    page = client.post(url, {"action": "emergency_stop_on", "_selected_action": [pk]})
    assert page.status_code == 200 and b"reason" in page.content
    client.post(url, {"action": "emergency_stop_on", "_selected_action": [pk], "confirm": "yes", "reason": "admin"})
    assert betting_halt() == Halt("emergency_stop", "admin")
    event = AuditEvent.objects.get()
    assert (event.source, event.actor) == ("admin", admin_user)
    # and Django admin's own history, next to the audit event: the switch's History page, "Recent actions"
    from django.contrib.admin.models import CHANGE, LogEntry

    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (admin_user, CHANGE, str(pk))
    assert entry.change_message == "Emergency stop ON. Reason: admin"
    assert "Emergency stop ON. Reason: admin" in client.get(f"{url}{pk}/history/").content.decode()
