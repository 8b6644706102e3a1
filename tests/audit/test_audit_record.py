import getpass

import pytest
from django.db import transaction

from audit.events import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_action_outside_the_constant_set_is_refused_and_nothing_is_written():
    with pytest.raises(ValueError, match="not an audit action"), transaction.atomic():
        audit_record(action="round.setle", source="cli")
    assert AuditEvent.objects.count() == 0


def test_a_command_line_action_without_a_django_user_records_the_os_user():
    with transaction.atomic():
        event = audit_record(action=AuditAction.ROUND_OPEN, source="cli", object_type="round", object_id="20250908")
    assert event.actor_id is None
    assert event.actor_label == f"os:{getpass.getuser()}"
    assert f"os:{getpass.getuser()} round.open round:20250908" in str(event)


def test_a_staff_action_records_the_person_and_their_email():
    staff = UserFactory(is_staff=True)
    with transaction.atomic():
        event = audit_record(action=AuditAction.EMERGENCY_STOP_ON, source="admin", actor=staff, reason="drill")
    assert (event.actor_id, event.actor_label) == (staff.pk, staff.email)


def test_an_automatic_action_of_the_beat_has_no_person():
    with transaction.atomic():
        event = audit_record(action=AuditAction.ROUND_OVERDUE, source="beat")
    assert (event.actor_id, event.actor_label) == (None, "")


@pytest.mark.django_db(transaction=True)  # the plain db fixture wraps every test in a transaction
def test_audit_record_outside_a_transaction_is_a_programming_error():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(action=AuditAction.ROUND_OPEN, source="cli")
