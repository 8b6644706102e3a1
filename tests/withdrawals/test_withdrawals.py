import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import override_settings

from audit.models import AuditEvent
from common.errors import ReasonRequired
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from ops.selectors import Halt
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund, role_user
from tests.withdrawals.helpers import ADDRESS
from withdrawals.exceptions import InvalidTransition, ProcessingHalted
from withdrawals.models import SimulatedPayout, Withdrawal
from withdrawals.services import (
    simulated_wallet_address,
    withdrawal_approve,
    withdrawal_complete,
    withdrawal_fail,
    withdrawal_request,
    withdrawals_process,
)

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _written() -> tuple[int, int, int]:
    return Withdrawal.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()


def _cash(user) -> int:
    return user_balance_u(user_id=user.pk)


# --- request --------------------------------------------------------------------------------


def test_request_moves_cash_to_pending_in_one_batch(funded_bettor, api):
    # when
    response = api(funded_bettor).post(
        "/api/v1/withdrawals", {"amount_u": 12_345_678, "destination": ADDRESS}, format="json"
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "QUEUED" and body["amount_u"] == 12_345_678 and body["destination"] == ADDRESS
    assert _cash(funded_bettor) == 87_654_322
    assert tvl_get().pending_withdrawals_u == 12_345_678
    batch = LedgerBatch.objects.get(ref_type="withdrawal", ref_id=str(body["id"]))
    assert sorted(batch.entries.values_list("account", "amount_u")) == [
        (Account.user_cash_code(funded_bettor.pk), -12_345_678),
        (Account.WITHDRAWALS_PENDING, 12_345_678),
    ]
    assert AuditEvent.objects.filter(action="withdrawal.request", object_id=str(body["id"])).count() == 1
    assert_ledger_invariants()


def test_root_withdrawals_path_is_the_same_operation(funded_bettor, api):
    response = api(funded_bettor).post("/withdrawals", {"amount_u": 500_000, "destination": ADDRESS}, format="json")
    assert response.status_code == 201
    assert tvl_get().pending_withdrawals_u == 500_000


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"amount_u": 0}, 400, "invalid_amount"),
        ({"amount_u": -1}, 400, "invalid_amount"),
        ({"amount_u": 1.5}, 400, "invalid"),
        ({"amount_u": 1.0}, 400, "invalid"),
        ({"amount_u": "1000000"}, 400, "invalid"),
        ({"amount_u": True}, 400, "invalid"),
        ({"amount_u": None}, 400, "invalid"),
        ({"amount_u": [1]}, 400, "invalid"),
        ({"amount_u": 10**13}, 400, "invalid_amount"),
        ({"amount_u": 99_999}, 400, "below_minimum"),
        ({"amount_u": 100_000_001}, 409, "insufficient_funds"),
        ({"destination": "0x123"}, 400, "invalid_destination"),
        ({"destination": "0x" + "g" * 40}, 400, "invalid_destination"),
        ({"destination": "ab" * 21}, 400, "invalid_destination"),
        ({"destination": ""}, 400, "destination_required"),
        ({"user_id": "00000000-0000-0000-0000-000000000000"}, 403, "permission_denied"),
    ],
)
def test_bad_request_is_a_4xx_and_writes_nothing(funded_bettor, api, payload, status, code):
    before = _written()
    response = api(funded_bettor).post(
        "/api/v1/withdrawals", {"amount_u": 1_000_000, "destination": ADDRESS, **payload}, format="json"
    )
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert _written() == before
    assert _cash(funded_bettor) == 100_000_000


@override_settings(WITHDRAWAL_MAX_U=5_000_000, WITHDRAWAL_MAX_PER_DAY_U=8_000_000)
def test_limits_per_request_and_per_day(funded_bettor, api):
    client = api(funded_bettor)
    over = client.post("/api/v1/withdrawals", {"amount_u": 5_000_001, "destination": ADDRESS}, format="json")
    assert over.status_code == 400 and over.json()["code"] == "withdrawal_limit"
    first = client.post("/api/v1/withdrawals", {"amount_u": 5_000_000, "destination": ADDRESS}, format="json")
    assert first.status_code == 201
    second = client.post("/api/v1/withdrawals", {"amount_u": 3_000_001, "destination": ADDRESS}, format="json")
    assert second.status_code == 400 and second.json()["code"] == "daily_limit"
    # a cancelled withdrawal gives its share of the day back
    assert client.post(f"/api/v1/withdrawals/{first.json()['id']}/cancel").status_code == 200
    assert (
        client.post("/api/v1/withdrawals", {"amount_u": 3_000_001, "destination": ADDRESS}, format="json").status_code
        == 201
    )
    assert _cash(funded_bettor) == 96_999_999
    assert_ledger_invariants()


def test_unauthenticated_request_is_401(funded_bettor):
    from rest_framework.test import APIClient

    response = APIClient().post("/withdrawals", {"user_id": str(funded_bettor.pk), "amount_u": 500_000}, format="json")
    assert response.status_code == 401
    assert Withdrawal.objects.count() == 0


def test_finance_token_acts_on_behalf_as_the_runbook_does(funded_bettor, api):
    staff = role_user("finance")
    response = api(staff).post("/withdrawals", {"user_id": str(funded_bettor.pk), "amount_u": 500_000}, format="json")
    assert response.status_code == 201, response.content
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.user == funded_bettor and withdrawal.requested_by == staff
    # no address known yet: in simulation the bettor's simulated wallet, which the bettor never registered
    assert withdrawal.destination == simulated_wallet_address(user_id=funded_bettor.pk)
    assert response.json()["needs_approval"] is True
    assert _cash(funded_bettor) == 99_500_000


def test_staff_on_behalf_defaults_to_the_last_destination(funded_bettor, api):
    withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    staff = role_user("finance")
    response = api(staff).post("/withdrawals", {"user_id": str(funded_bettor.pk), "amount_u": 500_000}, format="json")
    assert response.json()["destination"] == ADDRESS.lower()  # from the address book the bettor's withdrawal filled
    assert response.json()["needs_approval"] is True  # registered just now: still in its cooling-off


@override_settings(SIMULATION_ENABLED=False)
def test_without_any_known_address_outside_simulation_is_refused(funded_bettor, api):
    staff = role_user("finance")
    response = api(staff).post("/withdrawals", {"user_id": str(funded_bettor.pk), "amount_u": 500_000}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "destination_required"
    with pytest.raises(CommandError, match="destination"):
        call_command("withdraw", "--user", funded_bettor.email, "--amount", "500000")
    assert Withdrawal.objects.count() == 0


def test_finance_with_unknown_user_id_is_404(api):
    staff = role_user("finance")
    for user_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = api(staff).post("/withdrawals", {"user_id": user_id, "amount_u": 500_000}, format="json")
        assert response.status_code == 404 and response.json()["code"] == "unknown_user"


# --- list, detail, cancel ----------------------------------------------------------------------


def test_list_and_detail_show_only_own(funded_bettor, api):
    other = UserFactory()
    fund(other, 10_000_000)
    mine, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    theirs, _ = withdrawal_request(user=other, amount_u=2_000_000, destination=ADDRESS, source="api")
    client = api(funded_bettor)
    assert [row["id"] for row in client.get("/api/v1/withdrawals").json()["results"]] == [mine.pk]
    assert client.get(f"/api/v1/withdrawals/{mine.pk}").json()["amount_u"] == 1_000_000
    assert client.get(f"/api/v1/withdrawals/{theirs.pk}").status_code == 404
    assert client.get("/api/v1/withdrawals/999999").status_code == 404
    assert client.get("/api/v1/withdrawals/abc").status_code == 404


def test_cancel_while_queued_refunds_exactly(funded_bettor, api):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=7_000_001, destination=ADDRESS, source="api")
    assert tvl_get().pending_withdrawals_u == 7_000_001
    response = api(funded_bettor).post(f"/api/v1/withdrawals/{withdrawal.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert _cash(funded_bettor) == 100_000_000
    assert tvl_get().pending_withdrawals_u == 0
    again = api(funded_bettor).post(f"/api/v1/withdrawals/{withdrawal.pk}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert _cash(funded_bettor) == 100_000_000
    assert_ledger_invariants()


def test_cancelling_someone_elses_is_404_and_writes_nothing(funded_bettor, api):
    other = UserFactory()
    fund(other, 10_000_000)
    theirs, _ = withdrawal_request(user=other, amount_u=2_000_000, destination=ADDRESS, source="api")
    before = _written()
    response = api(funded_bettor).post(f"/api/v1/withdrawals/{theirs.pk}/cancel")
    assert response.status_code == 404
    assert _written() == before
    assert Withdrawal.objects.get(pk=theirs.pk).status == "QUEUED"


def test_cancelling_a_processing_or_completed_one_is_409(funded_bettor, api):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    withdrawals_process(source="cli")
    before = _written()
    response = api(funded_bettor).post(f"/api/v1/withdrawals/{withdrawal.pk}/cancel")
    assert response.status_code == 409
    assert _written() == before


# --- processing: complete, fail -------------------------------------------------------------


def test_process_completes_pending_to_external(funded_bettor, django_capture_on_commit_callbacks):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=30_000_000, destination=ADDRESS, source="api")
    report = withdrawals_process(source="cli")
    assert report.completed == [withdrawal.pk] and report.failed == []
    withdrawal.refresh_from_db()
    assert withdrawal.status == "COMPLETED"
    assert withdrawal.tx_hash == SimulatedPayout.objects.get(reference=withdrawal.payout_reference).tx_hash
    assert _cash(funded_bettor) == 70_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 30_000_000
    assert AuditEvent.objects.filter(action="withdrawal.complete", object_id=str(withdrawal.pk)).count() == 1
    assert_ledger_invariants()


@override_settings(PAYOUT_SIMULATED_FAILURE_RATE=1.0)
def test_rejected_payout_fails_refunds_and_emails(funded_bettor, django_capture_on_commit_callbacks):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=30_000_000, destination=ADDRESS, source="api")
    with django_capture_on_commit_callbacks(execute=True):
        report = withdrawals_process(source="cli")
    assert report.failed == [withdrawal.pk]
    withdrawal.refresh_from_db()
    assert withdrawal.status == "FAILED"
    assert withdrawal.failure_reason == "simulated payout failure"
    assert _cash(funded_bettor) == 100_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [funded_bettor.email]
    assert "simulated payout failure" in mail.outbox[0].body
    assert_ledger_invariants()


def test_failing_a_completed_one_is_refused_and_writes_nothing(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    withdrawals_process(source="cli")
    before = _written()
    with pytest.raises(InvalidTransition):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="oops", source="cli")
    assert _written() == before
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "COMPLETED"
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 1_000_000
    assert_ledger_invariants()


def test_completing_a_failed_one_is_refused_and_writes_nothing(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    withdrawal_fail(withdrawal_id=withdrawal.pk, reason="compliance hold", source="cli")
    before = _written()
    with pytest.raises(InvalidTransition):
        withdrawal_complete(withdrawal_id=withdrawal.pk, tx_hash="0xdead", source="cli")
    assert _written() == before
    assert _cash(funded_bettor) == 100_000_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0
    assert_ledger_invariants()


def test_fail_needs_a_reason(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    with pytest.raises(ReasonRequired, match="reason"):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="  ", source="cli")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"


def test_process_respects_limit_and_order(funded_bettor):
    ids = [
        withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")[0].pk
        for _ in range(3)
    ]
    call_command("process_withdrawals", "--limit", "2")
    assert list(Withdrawal.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True)) == [
        "COMPLETED",
        "COMPLETED",
        "QUEUED",
    ]
    assert tvl_get().pending_withdrawals_u == 1_000_000
    with pytest.raises(CommandError):
        call_command("process_withdrawals", "--limit", "0")


def test_process_command_checks_the_actor_it_names(funded_bettor):
    from tests.factories import role_user

    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    role_user("auditor", email="aud@example.com")
    with pytest.raises(CommandError, match=r"permission_denied"):
        call_command("process_withdrawals", "--actor", "aud@example.com")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    role_user("finance", email="fin@example.com")
    call_command("process_withdrawals", "--actor", "fin@example.com")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "COMPLETED"
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000 - 1_000_000


def test_emergency_stop_refuses_processing(funded_bettor, monkeypatch):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    monkeypatch.setattr(
        "withdrawals.services.payouts.betting_halt", lambda: Halt(code="emergency_stop", reason="drill")
    )
    with pytest.raises(ProcessingHalted) as raised:
        withdrawals_process(source="cli")
    assert raised.value.code == "emergency_stop"
    with pytest.raises(CommandError, match="emergency_stop"):
        call_command("process_withdrawals")
    from withdrawals.tasks import withdrawals_process_batch

    assert withdrawals_process_batch() == {"halted": "Withdrawal processing is stopped by the emergency stop: drill"}
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    assert SimulatedPayout.objects.count() == 0


def test_circuit_breaker_does_not_stop_payouts(funded_bettor, monkeypatch):
    withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    monkeypatch.setattr(
        "withdrawals.services.payouts.betting_halt", lambda: Halt(code="circuit_breaker", reason="loss")
    )
    assert len(withdrawals_process(source="cli").completed) == 1


def test_beat_task_processes_a_batch(funded_bettor):
    from withdrawals.tasks import withdrawals_process_batch

    withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    assert withdrawals_process_batch.delay().get() == {
        "claimed": 1,
        "completed": 1,
        "failed": 0,
        "in_flight": 0,
        "errors": 0,
    }
    assert withdrawals_process_batch() == {"claimed": 0, "completed": 0, "failed": 0, "in_flight": 0, "errors": 0}


# --- a crash between "sent" and "recorded" --------------------------------------------------


def test_crash_after_send_before_record_is_resumed_by_status_and_never_paid_twice(funded_bettor, monkeypatch):
    from withdrawals import adapters
    from withdrawals.services import payouts as services

    calls = {"send": 0, "status": 0}
    real_send, real_status = adapters.SimulatedPayoutAdapter.send, adapters.SimulatedPayoutAdapter.status

    def counting_send(self, *args, **kwargs):
        calls["send"] += 1
        return real_send(self, *args, **kwargs)

    def counting_status(self, *args, **kwargs):
        calls["status"] += 1
        return real_status(self, *args, **kwargs)

    monkeypatch.setattr(adapters.SimulatedPayoutAdapter, "send", counting_send)
    monkeypatch.setattr(adapters.SimulatedPayoutAdapter, "status", counting_status)
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=40_000_000, destination=ADDRESS, source="api")

    # given: the worker pays, then dies before recording it
    def crash(**kwargs):
        raise RuntimeError("worker killed between send and record")

    monkeypatch.setattr(services, "withdrawal_complete", crash)
    report = withdrawals_process(source="beat")
    assert report.errors == [withdrawal.pk]
    withdrawal.refresh_from_db()
    assert withdrawal.status == "PROCESSING"
    assert calls == {"send": 1, "status": 0}
    assert SimulatedPayout.objects.count() == 1  # the money left
    assert tvl_get().pending_withdrawals_u == 40_000_000
    monkeypatch.undo()
    monkeypatch.setattr(adapters.SimulatedPayoutAdapter, "send", counting_send)
    monkeypatch.setattr(adapters.SimulatedPayoutAdapter, "status", counting_status)

    # while the dead worker's lease runs, nobody else touches it
    assert withdrawals_process(source="beat").claimed == 0

    # when: the lease has run out and the next run resumes it
    with override_settings(WITHDRAWAL_PROCESSING_LEASE_SECONDS=0):
        Withdrawal.objects.filter(pk=withdrawal.pk).update(lease_until=None)
        report = withdrawals_process(source="beat")

    # then: it asked status, did not send again, and recorded the one payout
    assert report.completed == [withdrawal.pk]
    assert calls == {"send": 1, "status": 1}
    withdrawal.refresh_from_db()
    assert withdrawal.status == "COMPLETED"
    assert withdrawal.tx_hash == SimulatedPayout.objects.get().tx_hash
    assert SimulatedPayout.objects.count() == 1
    assert _cash(funded_bettor) == 60_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 40_000_000
    assert LedgerBatch.objects.filter(idempotency_key=f"withdrawal:{withdrawal.pk}:release").count() == 1
    assert_ledger_invariants()


def test_crash_before_send_is_resumed_by_sending_once(funded_bettor, monkeypatch):
    from withdrawals import adapters

    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")

    def died(self, *args, **kwargs):
        raise RuntimeError("worker killed before send")

    monkeypatch.setattr(adapters.SimulatedPayoutAdapter, "send", died)
    withdrawals_process(source="beat")
    monkeypatch.undo()
    assert SimulatedPayout.objects.count() == 0
    Withdrawal.objects.filter(pk=withdrawal.pk).update(lease_until=None)
    assert withdrawals_process(source="beat").completed == [withdrawal.pk]
    assert SimulatedPayout.objects.count() == 1
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 1_000_000
    assert_ledger_invariants()


def test_manual_fail_of_an_in_flight_payout_is_refused_and_flagged(funded_bettor, monkeypatch):
    from withdrawals.exceptions import PayoutInFlight
    from withdrawals.services import payouts as services

    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    monkeypatch.setattr(services, "withdrawal_complete", lambda **kwargs: (_ for _ in ()).throw(RuntimeError()))
    withdrawals_process(source="beat")
    monkeypatch.undo()
    # lease running or not, a PROCESSING one may be at the custodian: refused, flagged, nothing refunded
    with pytest.raises(PayoutInFlight) as raised:
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="stuck", source="cli")
    assert raised.value.code == "payout_may_be_in_flight"
    Withdrawal.objects.filter(pk=withdrawal.pk).update(lease_until=None)
    with pytest.raises(PayoutInFlight):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="stuck", source="cli")
    flagged = Withdrawal.objects.get(pk=withdrawal.pk)
    assert (flagged.status, flagged.needs_reconciliation, flagged.reconciliation_reason) == (
        "PROCESSING",
        True,
        "stuck",
    )
    assert _cash(funded_bettor) == 99_000_000
    assert tvl_get().pending_withdrawals_u == 1_000_000
    # the next run asks the custodian, which paid it: completed, never refunded
    assert withdrawals_process(source="beat").completed == [withdrawal.pk]
    assert _cash(funded_bettor) == 99_000_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 1_000_000
    assert SimulatedPayout.objects.count() == 1
    assert_ledger_invariants()


# --- the runbook's commands -----------------------------------------------------------------


def test_withdraw_and_deposit_commands_use_the_same_services(bettor, capsys):
    call_command("deposit", "--user", bettor.email, "--amount", "1000000")
    call_command("deposit", "--user", bettor.email, "--amount", "0")
    assert "Balance of" in capsys.readouterr().out
    call_command("withdraw", "--user", bettor.email, "--amount", "500000")
    out = capsys.readouterr().out
    # the operator at the shell acts for the bettor, to an address the bettor never registered: held
    assert "QUEUED (needs staff approval)" in out and "balance now 0.50 USDC (500,000 u)" in out
    assert tvl_get().pending_withdrawals_u == 500_000
    with pytest.raises(CommandError):
        call_command("withdraw", "--user", bettor.email, "--amount", "600000")
    with pytest.raises(CommandError):
        call_command("withdraw", "--user", bettor.email, "--amount", "100000", "--destination", "nope")
    call_command("process_withdrawals")
    assert "0 completed" in capsys.readouterr().out
    withdrawal_approve(withdrawal_id=Withdrawal.objects.get().pk, acting_user=role_user("finance"))
    call_command("process_withdrawals")
    assert "1 completed" in capsys.readouterr().out
    assert tvl_get().pending_withdrawals_u == 0
    assert _cash(bettor) == 500_000
    assert_ledger_invariants()


def test_the_real_emergency_stop_switch_halts_processing(funded_bettor):
    from ops.services import ops_emergency_stop

    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    ops_emergency_stop(active=True, reason="incident drill", source="cli")
    with pytest.raises(CommandError, match="emergency"):
        call_command("process_withdrawals")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    ops_emergency_stop(active=False, source="cli")
    call_command("process_withdrawals")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "COMPLETED"


def test_idempotency_key_replays_the_same_withdrawal(funded_bettor, api):
    client = api(funded_bettor)
    body = {"amount_u": 2_000_000, "destination": ADDRESS}
    first = client.post("/api/v1/withdrawals", body, format="json", HTTP_IDEMPOTENCY_KEY="wd-1")
    again = client.post("/api/v1/withdrawals", body, format="json", HTTP_IDEMPOTENCY_KEY="wd-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    before = _written()
    other = client.post(
        "/api/v1/withdrawals", {**body, "amount_u": 3_000_000}, format="json", HTTP_IDEMPOTENCY_KEY="wd-1"
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_conflict"
    bad = client.post("/api/v1/withdrawals", body, format="json", HTTP_IDEMPOTENCY_KEY="x" * 129)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_idempotency_key"
    assert _written() == before
    assert _cash(funded_bettor) == 98_000_000
    # another user may use the same key
    someone = UserFactory()
    fund(someone, 5_000_000)
    assert api(someone).post("/api/v1/withdrawals", body, format="json", HTTP_IDEMPOTENCY_KEY="wd-1").status_code == 201
    assert_ledger_invariants()


def test_huge_ids_are_404_not_500(funded_bettor, api):
    client = api(funded_bettor)
    huge = 10**25
    assert client.get(f"/api/v1/withdrawals/{huge}").status_code == 404
    assert client.post(f"/api/v1/withdrawals/{huge}/cancel").status_code == 404
