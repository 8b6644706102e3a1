import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

from audit.models import AuditEvent
from common.errors import PermissionDenied
from ledger.models import Account
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.withdrawals.helpers import ADDRESS
from withdrawals.exceptions import ApprovalRefused, InvalidTransition
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_approve, withdrawal_request, withdrawals_process

pytestmark = [pytest.mark.money, pytest.mark.django_db]

CHANGELIST = "/admin/withdrawals/withdrawal/"


def _staff(*perms: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="withdrawals", codename__in=perms))
    return type(user).objects.get(pk=user.pk)  # fresh: no cached permissions


def _approver():
    return _staff("approve_withdrawal", "view_withdrawal")


@pytest.fixture
def rich_bettor(db):
    user = UserFactory()
    fund(user, 50_000_000_000)
    return user


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_at_threshold_no_approval_above_it_waits(rich_bettor):
    at, _ = withdrawal_request(user=rich_bettor, amount_u=10_000_000, destination=ADDRESS, source="api")
    above, _ = withdrawal_request(user=rich_bettor, amount_u=10_000_001, destination=ADDRESS, source="api")
    assert (at.needs_approval, above.needs_approval) == (False, True)
    report = withdrawals_process(source="cli")
    assert report.completed == [at.pk]
    assert Withdrawal.objects.get(pk=above.pk).status == "QUEUED"
    assert tvl_get().pending_withdrawals_u == 10_000_001


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_another_staff_user_approves_then_it_is_paid(rich_bettor):
    withdrawal, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    approver = _approver()
    approved = withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=approver, reason="KYC ok")
    assert approved.approved_by == approver and approved.approved_at is not None
    assert AuditEvent.objects.filter(action="withdrawal.approve", actor=approver, reason="KYC ok").count() == 1
    assert withdrawals_process(source="cli").completed == [withdrawal.pk]
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 20_000_000
    assert user_balance_u(user_id=rich_bettor.pk) == 49_980_000_000
    assert_ledger_invariants()


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_the_requester_cannot_approve(rich_bettor):
    requester = _staff("approve_withdrawal", "request_withdrawal_on_behalf", "view_withdrawal")
    withdrawal, _ = withdrawal_request(
        user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api", acting_user=requester
    )
    with pytest.raises(ApprovalRefused) as refused:
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=requester)
    assert refused.value.code == "own_request"
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by is None


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_staff_cannot_approve_their_own_withdrawal():
    staff = _approver()
    fund(staff, 30_000_000)
    withdrawal, _ = withdrawal_request(user=staff, amount_u=20_000_000, destination=ADDRESS, source="api")
    with pytest.raises(ApprovalRefused):
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=staff)


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_approval_needs_the_permission_and_staff(rich_bettor):
    withdrawal, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    with pytest.raises(PermissionDenied):
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=_staff("view_withdrawal"))
    with pytest.raises(PermissionDenied):
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=UserFactory())
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by is None


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_approving_twice_or_a_small_one_is_refused(rich_bettor):
    small, _ = withdrawal_request(user=rich_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    large, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    with pytest.raises(InvalidTransition):
        withdrawal_approve(withdrawal_id=small.pk, acting_user=_approver())
    withdrawal_approve(withdrawal_id=large.pk, acting_user=_approver())
    with pytest.raises(InvalidTransition) as refused:
        withdrawal_approve(withdrawal_id=large.pk, acting_user=_approver())
    assert refused.value.code == "already_approved"


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000, WITHDRAWAL_APPROVALS_REQUIRED=2)
def test_two_approvals_from_two_different_staff_users(rich_bettor):
    withdrawal, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    first, second = _approver(), _approver()
    withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=first)
    assert withdrawals_process(source="cli").claimed == 0  # one approval is not enough
    with pytest.raises(ApprovalRefused) as refused:
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=first)
    assert refused.value.code == "same_approver"
    approved = withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=second)
    assert (approved.approved_by, approved.second_approved_by) == (first, second)
    assert withdrawals_process(source="cli").completed == [withdrawal.pk]
    assert_ledger_invariants()


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_a_waiting_withdrawal_can_still_be_cancelled(rich_bettor, api):
    withdrawal, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    assert api(rich_bettor).post(f"/api/v1/withdrawals/{withdrawal.pk}/cancel").status_code == 200
    assert user_balance_u(user_id=rich_bettor.pk) == 50_000_000_000


# --- admin -------------------------------------------------------------------------------------


def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_and_searches_withdrawals_and_deposits(funded_bettor):
    withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    superuser = UserFactory(is_staff=True)
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    client = _admin_client(superuser)
    for url in (
        CHANGELIST,
        f"{CHANGELIST}?q={funded_bettor.email}",
        f"{CHANGELIST}?q=notanid",
        "/admin/withdrawals/deposit/",
        f"/admin/withdrawals/deposit/?q={funded_bettor.email}",
        "/admin/withdrawals/depositintent/",
        "/admin/withdrawals/simulatedpayout/",
        f"{CHANGELIST}{Withdrawal.objects.get().pk}/change/",
    ):
        assert client.get(url).status_code == 200, url
    assert funded_bettor.email in client.get(f"{CHANGELIST}?q={funded_bettor.email}").content.decode()


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_admin_approve_asks_for_confirmation_and_reason_then_audits(rich_bettor):
    withdrawal, _ = withdrawal_request(user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    approver = _approver()
    client = _admin_client(approver)
    page = client.post(CHANGELIST, {"action": "approve", "_selected_action": [withdrawal.pk]})
    assert page.status_code == 200
    assert b"Approve withdrawals" in page.content
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by is None
    # no reason: the form asks again, nothing changes
    again = client.post(CHANGELIST, {"action": "approve", "_selected_action": [withdrawal.pk], "confirm": "yes"})
    assert again.status_code == 200
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by is None
    done = client.post(
        CHANGELIST,
        {"action": "approve", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "called the user"},
        follow=True,
    )
    assert done.status_code == 200
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by == approver
    event = AuditEvent.objects.get(action="withdrawal.approve")
    assert (event.actor, event.source, event.reason) == (approver, "admin", "called the user")
    # the changelist shows who approved
    assert approver.email in client.get(CHANGELIST).content.decode()


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_admin_approving_own_request_is_a_red_message(rich_bettor):
    approver = _staff("approve_withdrawal", "request_withdrawal_on_behalf", "view_withdrawal")
    withdrawal, _ = withdrawal_request(
        user=rich_bettor, amount_u=20_000_000, destination=ADDRESS, source="admin", acting_user=approver
    )
    response = _admin_client(approver).post(
        CHANGELIST,
        {"action": "approve", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "mine"},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("own_request" in m for m in messages)
    assert Withdrawal.objects.get(pk=withdrawal.pk).approved_by is None


def test_admin_actions_are_permission_gated(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    viewer = _staff("view_withdrawal")
    client = _admin_client(viewer)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    for action in ("approve", "process_now", "mark_failed", "resolve"):
        assert f'value="{action}"'.encode() not in page.content
        client.post(
            CHANGELIST, {"action": action, "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "x"}
        )
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    assert user_balance_u(user_id=funded_bettor.pk) == 99_000_000


def test_admin_process_now_pays_and_audits(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    operator = _staff("process_withdrawal", "view_withdrawal")
    client = _admin_client(operator)
    assert client.post(CHANGELIST, {"action": "process_now", "_selected_action": [withdrawal.pk]}).status_code == 200
    client.post(
        CHANGELIST,
        {"action": "process_now", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "user waiting"},
    )
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "COMPLETED"
    assert AuditEvent.objects.get(action="withdrawal.process_now").actor == operator
    assert AuditEvent.objects.get(action="withdrawal.complete").source == "admin"
    assert tvl_get().pending_withdrawals_u == 0
    assert_ledger_invariants()


def test_admin_mark_failed_refunds_with_reason_and_audits(funded_bettor, django_capture_on_commit_callbacks):
    from django.core import mail

    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    finance = _staff("fail_withdrawal", "view_withdrawal")
    with django_capture_on_commit_callbacks(execute=True):
        _admin_client(finance).post(
            CHANGELIST,
            {"action": "mark_failed", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "sanctioned"},
        )
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.failure_reason) == ("FAILED", "sanctioned")
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000
    event = AuditEvent.objects.get(action="withdrawal.fail")
    assert (event.actor, event.source, event.reason) == (finance, "admin", "sanctioned")
    assert len(mail.outbox) == 1
    # failing it again is a red message and writes nothing
    response = _admin_client(finance).post(
        CHANGELIST,
        {"action": "mark_failed", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "again"},
        follow=True,
    )
    assert any("invalid_transition" in str(m) for m in response.context["messages"])
    assert AuditEvent.objects.filter(action="withdrawal.fail").count() == 1
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000
    assert_ledger_invariants()


def test_admin_mark_failed_on_processing_flags_it_and_resolve_settles_it(funded_bettor, monkeypatch):
    from withdrawals.services import payouts as services

    # given: a payout sent whose answer never got recorded (the worker died in between)
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    monkeypatch.setattr(services, "withdrawal_complete", lambda **kwargs: (_ for _ in ()).throw(RuntimeError()))
    withdrawals_process(source="beat")
    monkeypatch.undo()
    finance = _staff("fail_withdrawal", "process_withdrawal", "view_withdrawal")

    # when: finance marks it failed in the admin
    response = _admin_client(finance).post(
        CHANGELIST,
        {"action": "mark_failed", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "stuck"},
        follow=True,
    )

    # then: a red message, no refund, flagged and audited
    assert any("payout_may_be_in_flight" in str(m) for m in response.context["messages"])
    row = Withdrawal.objects.get(pk=withdrawal.pk)
    assert (row.status, row.needs_reconciliation) == ("PROCESSING", True)
    assert user_balance_u(user_id=funded_bettor.pk) == 99_000_000
    assert AuditEvent.objects.get(action="withdrawal.reconcile_requested").reason == "stuck"
    assert not AuditEvent.objects.filter(action="withdrawal.fail").exists()

    # when: they ask the payout service, which paid it
    response = _admin_client(finance).post(
        CHANGELIST,
        {"action": "resolve", "_selected_action": [withdrawal.pk], "confirm": "yes", "reason": "user asks"},
        follow=True,
    )

    # then: completed, not refunded
    assert any("reports completed; now COMPLETED" in str(m) for m in response.context["messages"])
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "COMPLETED"
    assert user_balance_u(user_id=funded_bettor.pk) == 99_000_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 1_000_000
    assert_ledger_invariants()
