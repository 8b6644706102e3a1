"""Four eyes: one request / approve model for manual results, adjustments, the breaker, withdrawals."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

import ops.tasks  # noqa: F401 - registers ops.evaluate_alerts, which the emergency void queues by name
from approvals.exceptions import ApprovalNotPending, ApprovalRefused, FourEyesRequired
from approvals.models import ApprovalRequest
from approvals.selectors import approvals_pending
from audit.models import AuditEvent
from common.errors import PermissionDenied
from ledger.selectors import user_balance_u
from ledger.services import ledger_manual_adjust, ledger_manual_adjust_approve, ledger_manual_adjust_request
from ops.approvals import approval_approve
from ops.models import Alert, OpsSwitch
from ops.rules import alert_findings
from ops.services import (
    circuit_breaker_open,
    circuit_breaker_reset,
    circuit_breaker_reset_approve,
    circuit_breaker_reset_request,
)
from rounds.models import Round
from rounds.services import round_result_approve, round_result_request, round_settle
from tests.factories import role_user
from tests.rounds.conftest import place_bet
from withdrawals.services import withdrawal_approve, withdrawal_cancel, withdrawal_request, withdrawals_process

pytestmark = pytest.mark.money
WALLET = "0x" + "cd" * 20


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_manual_up_result_needs_a_second_operator(locked_round, users):
    winner, loser = users(2)
    place_bet(locked_round, winner, "UP", 3_000_000)
    place_bet(locked_round, loser, "DOWN", 1_000_000)
    a = role_user("operator", email="a@example.com")
    b = role_user("operator", email="b@example.com")

    with pytest.raises(FourEyesRequired):  # by hand, alone: refused, nothing settled
        round_settle(code=locked_round.code, result="UP", reason="oracle down", acting_user=a, source="admin")
    request, created = round_result_request(
        code=locked_round.code, result="UP", reason="Nasdaq close 19 812.4 > 19 790.1", acting_user=a, source="admin"
    )
    assert created and list(approvals_pending()) == [request]
    with pytest.raises(ApprovalRefused) as own:
        round_result_approve(request_id=request.pk, acting_user=a, source="admin")
    assert own.value.code == "own_request"
    assert Round.objects.get(pk=locked_round.pk).status == Round.Status.LOCKED

    settlement = round_result_approve(request_id=request.pk, acting_user=b, source="admin")

    assert (settlement.result, settlement.fee_u, settlement.paid_out_u) == ("UP", 10_000, 3_990_000)
    assert user_balance_u(user_id=winner.pk) == 10_000_000_000 - 3_000_000 + 3_990_000
    assert list(approvals_pending()) == []
    trail = AuditEvent.objects.filter(action__in=["approval.request", "approval.grant", "round.settle"])
    assert [(e.action, e.actor_label) for e in trail.order_by("id")] == [
        ("approval.request", "a@example.com"),
        ("approval.grant", "b@example.com"),
        ("round.settle", "b@example.com"),
    ]
    assert "requested by a@example.com, approved by b@example.com" in trail.get(action="round.settle").reason
    with pytest.raises(ApprovalNotPending):  # approved once: it cannot settle twice
        round_result_approve(request_id=request.pk, acting_user=role_user("operator"), source="admin")


def test_the_command_requests_and_another_operator_approves(locked_round, users):
    winner, loser = users(2)
    place_bet(locked_round, winner, "DOWN", 2_000_000)
    place_bet(locked_round, loser, "UP", 2_000_000)
    role_user("operator", email="a@example.com")
    role_user("operator", email="b@example.com")
    out = run(
        "settle_round", "--code", locked_round.code, "--result", "DOWN", "--reason", "r", "--actor", "a@example.com"
    )
    request = ApprovalRequest.objects.get()
    assert f"--approve {request.pk}" in out
    with pytest.raises(CommandError, match=r"\[own_request\]"):
        run("settle_round", "--approve", str(request.pk), "--actor", "a@example.com")
    with pytest.raises(CommandError, match=r"\[approver_required\]"):
        run("settle_round", "--approve", str(request.pk))
    with pytest.raises(CommandError, match=r"\[approval_not_found\]"):
        run("settle_round", "--approve", "99999999999999999999999", "--actor", "b@example.com")
    out = run("settle_round", "--approve", str(request.pk), "--actor", "b@example.com")
    assert "SETTLED: DOWN" in out
    assert user_balance_u(user_id=winner.pk) == 10_000_000_000 - 2_000_000 + 3_980_000


def test_a_request_expires(locked_round):
    a, b = role_user("operator"), role_user("operator")
    request, _ = round_result_request(code=locked_round.code, result="UP", reason="r", acting_user=a, source="cli")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApprovalNotPending) as expired:
        round_result_approve(request_id=request.pk, acting_user=b, source="cli")
    assert expired.value.code == "approval_expired"
    assert list(approvals_pending()) == []
    again, created = round_result_request(
        code=locked_round.code, result="DOWN", reason="r", acting_user=a, source="cli"
    )
    assert created and ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.EXPIRED


def test_an_emergency_void_is_one_operator_and_a_p1_alert(locked_round, users, django_capture_on_commit_callbacks):
    bettor, other = users(2)
    place_bet(locked_round, bettor, "UP", 5_000_000)
    place_bet(locked_round, other, "DOWN", 1_000_000)
    operator = role_user("operator", email="op@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        settlement = round_settle(
            code=locked_round.code, result="VOID", reason="oracle feed corrupt", acting_user=operator, source="admin"
        )
    assert (settlement.result, settlement.paid_out_u, settlement.fee_u) == ("VOID", 6_000_000, 0)
    assert user_balance_u(user_id=bettor.pk) == 10_000_000_000
    void = AuditEvent.objects.get(action="round.void")
    assert (void.actor, void.reason) == (operator, "oracle feed corrupt")
    [finding] = [f for f in alert_findings(now=timezone.now()) if f.rule == "emergency_void"]
    assert finding.severity == "P1" and "op@example.com" in finding.summary and "6000000 u" in finding.summary
    assert Alert.objects.filter(rule="emergency_void", severity="P1").exists()  # raised once it committed


@override_settings(FOUR_EYES_THRESHOLD_U=1_000_000_000)
def test_a_manual_credit_above_the_threshold_needs_a_second_finance_user(users):
    (bettor,) = users(1)
    first, second = role_user("finance"), role_user("finance")
    small = ledger_manual_adjust(
        user=bettor, amount_u=1_000_000_000, direction="credit", reason="goodwill", acting_user=first,
        source="admin", idempotency_key="k1",
    )  # fmt: skip
    assert small.created
    with pytest.raises(FourEyesRequired):
        ledger_manual_adjust(
            user=bettor, amount_u=1_000_000_001, direction="credit", reason="x", acting_user=first,
            source="admin", idempotency_key="k2",
        )  # fmt: skip
    request, _ = ledger_manual_adjust_request(
        user=bettor, amount_u=2_500_000_000, direction="debit", reason="chargeback", acting_user=first, source="admin"
    )
    with pytest.raises(ApprovalRefused):
        ledger_manual_adjust_approve(request_id=request.pk, acting_user=first, source="admin")
    with pytest.raises(PermissionDenied):  # a bettor is no finance user
        ledger_manual_adjust_approve(request_id=request.pk, acting_user=bettor, source="admin")
    posted = ledger_manual_adjust_approve(request_id=request.pk, acting_user=second, source="admin")
    assert posted is not None and posted.created
    assert user_balance_u(user_id=bettor.pk) == 10_000_000_000 + 1_000_000_000 - 2_500_000_000


def test_lifting_the_breaker_needs_a_second_operator(db):
    a, b = role_user("operator", email="a@example.com"), role_user("operator", email="b@example.com")
    circuit_breaker_open(rule="manual", reason="drill", source="cli")
    with pytest.raises(FourEyesRequired):
        circuit_breaker_reset(reason="fixed", actor=a, source="admin")
    request, _ = circuit_breaker_reset_request(reason="fixed", actor=a, source="admin")
    with pytest.raises(ApprovalRefused):
        circuit_breaker_reset_approve(request_id=request.pk, actor=a, source="admin")
    assert OpsSwitch.objects.get(name="circuit_breaker").active
    switch, changed = circuit_breaker_reset_approve(request_id=request.pk, actor=b, source="admin")
    assert changed and not switch.active
    assert switch.reason == "fixed (requested by a@example.com, approved by b@example.com)"


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000, WITHDRAWAL_APPROVALS_REQUIRED=2)
def test_a_held_withdrawal_is_one_of_the_same_requests(users):
    (bettor,) = users(1)
    withdrawal, _ = withdrawal_request(user=bettor, amount_u=20_000_000, destination=WALLET, source="api")
    [request] = approvals_pending()
    assert (request.kind, request.target, request.approvals_required) == ("withdrawal", str(withdrawal.pk), 2)
    assert request.payload == {"amount_u": 20_000_000, "destination": WALLET}
    first, second = role_user("finance"), role_user("operator")
    approval_approve(request=request, actor=first, source="admin")  # the admin's one "Approve" door
    with pytest.raises(ApprovalRefused) as twice:
        withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=first)
    assert twice.value.code == "same_approver"
    approved = approval_approve(request=request, actor=second, source="admin")
    assert (approved.approved_by, approved.second_approved_by) == (first, second)
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.APPROVED
    assert withdrawals_process(source="cli").completed == [withdrawal.pk]


@override_settings(WITHDRAWAL_APPROVAL_THRESHOLD_U=10_000_000)
def test_a_cancelled_withdrawal_leaves_no_pending_request(users):
    (bettor,) = users(1)
    withdrawal, _ = withdrawal_request(user=bettor, amount_u=20_000_000, destination=WALLET, source="api")
    withdrawal_cancel(withdrawal_id=withdrawal.pk, user=bettor)
    assert list(approvals_pending()) == []
    assert ApprovalRequest.objects.get().status == ApprovalRequest.Status.CANCELLED
    assert AuditEvent.objects.filter(action="approval.cancel").count() == 1


@override_settings(FOUR_EYES_THRESHOLD_U=1_000_000)
def test_the_approve_command_lists_and_approves_any_kind(users):
    (bettor,) = users(1)
    role_user("finance", email="f1@example.com")
    second = role_user("finance", email="f2@example.com")
    first = type(second).objects.get(email="f1@example.com")
    request, _ = ledger_manual_adjust_request(
        user=bettor, amount_u=2_000_000, direction="credit", reason="lost deposit", acting_user=first, source="admin"
    )
    listing = run("approve")
    assert f"#{request.pk} ledger_adjust" in listing and "lost deposit" in listing and "(0/1," in listing
    with pytest.raises(CommandError, match=r"\[own_request\]"):
        run("approve", "--approve", str(request.pk), "--actor", "f1@example.com")
    for bad in ("abc", "-1", "9" * 40):
        with pytest.raises(CommandError, match=r"\[approval_not_found\]"):
            run("approve", "--approve", bad, "--actor", "f2@example.com")
    assert "Approved request" in run("approve", "--approve", str(request.pk), "--actor", "f2@example.com")
    assert user_balance_u(user_id=bettor.pk) == 10_000_000_000 + 2_000_000
    assert run("approve") == ""
