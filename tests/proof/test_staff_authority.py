"""Issue 9, finding 1: "Any staff account moves any bettor's money".

The read-only auditor's token withdrew another bettor's cash to an address of its choosing and
`process_withdrawals` paid it; any staff token could bet for anyone and switch the emergency stop.
Now acting for a user needs the permission of the role that holds that act (operator: bets;
finance: withdrawals), the ops switches need `ops.change_opsswitch`, all checked in the service,
and a withdrawal staff (or the shell) request for a user is paid without a second person only to
an address the user registered, after its cooling-off.
"""

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from betting.models import Bet
from betting.services import bet_place
from common.errors import PermissionDenied
from ledger.models import Account, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from ops.models import OpsSwitch
from ops.selectors import betting_halt
from ops.services import circuit_breaker_reset, ops_emergency_stop
from tests.betting.conftest import round_create
from tests.conftest import api_client_for, assert_ledger_invariants
from tests.factories import UserFactory, fund, role_user
from withdrawals.exceptions import ApprovalRefused
from withdrawals.models import PayoutAddress, Withdrawal
from withdrawals.services import (
    payout_address_register,
    simulated_wallet_address,
    withdrawal_approve,
    withdrawal_request,
    withdrawals_process,
)

pytestmark = [pytest.mark.money, pytest.mark.django_db]

ATTACKER = "0x" + "66" * 20  # an address nobody registered
BETTOR_WALLET = "0x" + "Ab" * 20  # the bettor's own, mixed case as wallets print it
CASH_U = 10_000_000


@pytest.fixture(autouse=True)
def _payouts_always_succeed(settings):
    settings.PAYOUT_ADAPTER = "simulated"
    settings.PAYOUT_SIMULATED_FAILURE_RATE = 0.0
    settings.PAYOUT_ADDRESS_COOLING_OFF_HOURS = 24


@pytest.fixture
def bettor(db):
    user = UserFactory()
    fund(user, CASH_U)
    return user


@pytest.fixture
def staff(db):
    return {role: role_user(role) for role in ("operator", "finance", "auditor")}


def _written() -> tuple[int, int, int, int]:
    return Withdrawal.objects.count(), Bet.objects.count(), LedgerEntry.objects.count(), AuditEvent.objects.count()


def _registered_long_ago(user, address: str = BETTOR_WALLET) -> PayoutAddress:
    """The bettor registered `address` 25 hours ago: its 24 h cooling-off is over."""
    with time_machine.travel(timezone.now() - dt.timedelta(hours=25), tick=False):
        entry, created = payout_address_register(user=user, address=address, source="api")
    assert created and entry.usable_from < timezone.now()
    return entry


# --- the reproduction: the auditor ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/withdrawals", "/withdrawals"])
def test_the_auditors_token_cannot_withdraw_another_bettors_cash(bettor, staff, path):
    # given: the read-only auditor's token, and the bettor's 10 USDC
    client = api_client_for(staff["auditor"])
    before = _written()
    # when: the call, three times, 2 USDC each to an address of the auditor's choosing
    answers = [
        client.post(path, {"user_id": str(bettor.pk), "amount_u": 2_000_000, "destination": ATTACKER}, format="json")
        for _ in range(3)
    ]
    # then: refused, nothing written, nothing to pay
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "permission_denied")] * 3
    assert _written() == before
    assert user_balance_u(user_id=bettor.pk) == 10_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert withdrawals_process(source="cli").claimed == 0
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0


def test_the_auditor_is_refused_before_the_user_is_looked_up(staff):
    # an unknown user id answers 403 too: a refused caller learns nothing about user ids
    client = api_client_for(staff["auditor"])
    for user_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = client.post("/withdrawals", {"user_id": user_id, "amount_u": 500_000}, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_the_auditors_token_cannot_bet_for_a_bettor(bettor, staff):
    round_ = round_create()
    before = _written()
    response = api_client_for(staff["auditor"]).post(
        "/api/v1/bets",
        {"side": "UP", "stake_u": 1_000_000, "user_id": str(bettor.pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="auditor-bet-1",
    )
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert _written() == before
    assert user_balance_u(user_id=bettor.pk) == 10_000_000
    round_.refresh_from_db()
    assert (round_.up_pool_u, round_.down_pool_u) == (0, 0)
    assert account_balance_u(code=Account.round_pool_code(round_.code)) == 0


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_only_the_operator_switches_the_emergency_stop_through_the_api(staff, role):
    client = api_client_for(staff[role])
    audits = AuditEvent.objects.count()
    # when: switch it on
    on = client.post("/api/v1/ops/emergency-stop", {"active": True, "reason": "not mine to pull"}, format="json")
    # then: refused and still off
    assert (on.status_code, on.json()["code"]) == (403, "permission_denied")
    assert betting_halt() is None
    # and an operator's stop cannot be switched off by them either
    ops_emergency_stop(active=True, reason="incident 42", actor=staff["operator"], source="api")
    off = client.post("/api/v1/ops/emergency-stop", {"active": False}, format="json")
    assert (off.status_code, off.json()["code"]) == (403, "permission_denied")
    switch = OpsSwitch.objects.get(name=OpsSwitch.Name.EMERGENCY_STOP)
    assert (switch.active, switch.reason, switch.changed_by) == (True, "incident 42", staff["operator"])
    assert AuditEvent.objects.count() == audits + 1  # only the operator's
    # reading stays open to every staff user
    assert client.get("/api/v1/ops/emergency-stop").json()["active"] is True


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_only_the_operator_resets_the_breaker_through_the_api(staff, role):
    OpsSwitch.objects.filter(name=OpsSwitch.Name.CIRCUIT_BREAKER).update(active=True, reason="house_loss: 12 USDC")
    audits = AuditEvent.objects.count()
    response = api_client_for(staff[role]).post("/api/v1/ops/circuit-breaker", {"reason": "looks fine"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert betting_halt().code == "circuit_breaker"
    assert AuditEvent.objects.count() == audits
    # the operator may
    asked = api_client_for(staff["operator"]).post("/api/v1/ops/circuit-breaker", {"reason": "fixed"}, format="json")
    assert asked.status_code == 202 and betting_halt() is not None  # four eyes: another operator approves
    second = role_user("operator", email="operator2@example.com")
    reset = api_client_for(second).post(
        "/api/v1/ops/circuit-breaker", {"approve": asked.json()["approval_request"]}, format="json"
    )
    assert reset.status_code == 200 and betting_halt() is None
    event = AuditEvent.objects.get(action="ops.circuit_breaker.reset")
    assert (event.actor, event.source) == (second, "api")


def test_the_ops_token_still_switches_and_is_audited_as_the_token(client, settings):
    settings.OPS_TOKEN = "ops-token-for-tests"
    response = client.post(
        "/api/v1/ops/emergency-stop",
        {"active": True, "reason": "pager"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer ops-token-for-tests",
    )
    assert response.status_code == 200 and betting_halt().code == "emergency_stop"
    event = AuditEvent.objects.get()
    assert (event.actor, event.source, event.action) == (None, "ops-token", "ops.emergency_stop.on")


# --- each act belongs to one role --------------------------------------------------------------


def test_the_operator_bets_for_a_bettor_but_cannot_withdraw_for_them(bettor, staff):
    round_create()
    client = api_client_for(staff["operator"])
    bet = client.post(
        "/api/v1/bets",
        {"side": "DOWN", "stake_u": 1_500_000, "user_id": str(bettor.pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="operator-bet-1",
    )
    assert bet.status_code == 201, bet.content
    assert user_balance_u(user_id=bettor.pk) == 8_500_000
    before = _written()
    withdrawal = client.post(
        "/withdrawals", {"user_id": str(bettor.pk), "amount_u": 500_000, "destination": BETTOR_WALLET}, format="json"
    )
    assert (withdrawal.status_code, withdrawal.json()["code"]) == (403, "permission_denied")
    assert _written() == before
    assert user_balance_u(user_id=bettor.pk) == 8_500_000


def test_finance_withdraws_for_a_bettor_but_cannot_bet_for_them(bettor, staff):
    round_create()
    client = api_client_for(staff["finance"])
    before = _written()
    bet = client.post(
        "/api/v1/bets",
        {"side": "UP", "stake_u": 1_000_000, "user_id": str(bettor.pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="finance-bet-1",
    )
    assert (bet.status_code, bet.json()["code"]) == (403, "permission_denied")
    assert _written() == before
    withdrawal = client.post("/withdrawals", {"user_id": str(bettor.pk), "amount_u": 500_000}, format="json")
    assert withdrawal.status_code == 201, withdrawal.content
    assert user_balance_u(user_id=bettor.pk) == 9_500_000


# --- finance: only to a registered address, else a second person ---------------------------------


def test_finance_to_an_unregistered_address_is_held_until_another_person_approves(bettor, staff):
    # when: finance withdraws 2 USDC of the bettor's cash to an address the bettor never registered
    response = api_client_for(staff["finance"]).post(
        "/api/v1/withdrawals",
        {"user_id": str(bettor.pk), "amount_u": 2_000_000, "destination": ATTACKER},
        format="json",
    )
    # then: queued (the money is reserved) but held, far below the approval threshold
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["needs_approval"], body["destination"]) == ("QUEUED", True, ATTACKER)
    assert user_balance_u(user_id=bettor.pk) == 8_000_000
    assert AuditEvent.objects.get(action="withdrawal.request").after["held_because"] == (
        "destination is not in the user's address book"
    )
    # process_withdrawals does not pay it, however often it runs
    call_command("process_withdrawals", stdout=StringIO())
    call_command("process_withdrawals", stdout=StringIO())
    assert Withdrawal.objects.get(pk=body["id"]).status == Withdrawal.Status.QUEUED
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0
    assert tvl_get().pending_withdrawals_u == 2_000_000
    # the requester cannot approve it themself; another finance user or an operator can
    with pytest.raises(ApprovalRefused):
        withdrawal_approve(withdrawal_id=body["id"], acting_user=staff["finance"])
    with pytest.raises(PermissionDenied):
        withdrawal_approve(withdrawal_id=body["id"], acting_user=staff["auditor"])
    withdrawal_approve(withdrawal_id=body["id"], acting_user=staff["operator"], reason="called the bettor")
    assert withdrawals_process(source="cli").completed == [body["id"]]
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 2_000_000
    assert user_balance_u(user_id=bettor.pk) == 8_000_000
    assert_ledger_invariants()


def test_finance_to_a_registered_address_past_its_cooling_off_is_paid_without_approval(bettor, staff):
    _registered_long_ago(bettor)
    # the runbook's call: no destination -> the bettor's usable registered address
    response = api_client_for(staff["finance"]).post(
        "/withdrawals", {"user_id": str(bettor.pk), "amount_u": 500_000}, format="json"
    )
    assert response.status_code == 201, response.content
    assert (response.json()["destination"], response.json()["needs_approval"]) == (BETTOR_WALLET.lower(), False)
    # naming it in its checksum case is the same address
    named, _ = withdrawal_request(
        user=bettor,
        amount_u=700_000,
        destination=BETTOR_WALLET.upper().replace("0X", "0x"),
        source="api",
        acting_user=staff["finance"],
    )
    assert named.needs_approval is False
    report = withdrawals_process(source="cli")
    assert report.completed == [response.json()["id"], named.pk]
    assert user_balance_u(user_id=bettor.pk) == 8_800_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 1_200_000
    assert tvl_get().pending_withdrawals_u == 0
    assert_ledger_invariants()


def test_finance_to_a_registered_address_still_in_its_cooling_off_is_held(bettor, staff):
    # given: the bettor registered the address through the API a moment ago
    registered = api_client_for(bettor).post(
        "/api/v1/me/payout-addresses", {"address": BETTOR_WALLET, "label": "my ledger"}, format="json"
    )
    assert registered.status_code == 201, registered.content
    usable_from = dt.datetime.fromisoformat(registered.json()["usable_from"])
    assert dt.timedelta(hours=23, minutes=59) < usable_from - timezone.now() <= dt.timedelta(hours=24)
    # when: finance pays it out at once
    withdrawal, _ = withdrawal_request(
        user=bettor, amount_u=1_000_000, destination=BETTOR_WALLET, source="api", acting_user=staff["finance"]
    )
    # then: held; nothing paid
    assert withdrawal.needs_approval is True
    assert withdrawals_process(source="cli").claimed == 0
    assert user_balance_u(user_id=bettor.pk) == 9_000_000
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 0
    held = AuditEvent.objects.get(action="withdrawal.request").after["held_because"]
    assert held.startswith("destination is in its cooling-off period until")


def test_a_bettors_own_withdrawal_registers_its_address_with_a_cooling_off(bettor, staff):
    # the bettor's own withdrawal is paid as before, and its address joins their book
    own = api_client_for(bettor).post(
        "/api/v1/withdrawals", {"amount_u": 1_000_000, "destination": BETTOR_WALLET}, format="json"
    )
    assert own.status_code == 201 and own.json()["needs_approval"] is False
    entry = PayoutAddress.objects.get(user=bettor)
    assert entry.address == BETTOR_WALLET.lower()
    # finance to that address right away: held (cooling-off); after it: paid
    early, _ = withdrawal_request(user=bettor, amount_u=500_000, source="api", acting_user=staff["finance"])
    assert early.needs_approval is True  # the default (last payout address) is in its cooling-off
    with time_machine.travel(entry.usable_from + dt.timedelta(seconds=1), tick=False):
        later, _ = withdrawal_request(user=bettor, amount_u=500_000, source="api", acting_user=staff["finance"])
        assert (later.destination, later.needs_approval) == (BETTOR_WALLET.lower(), False)
        assert withdrawals_process(source="cli").completed == [own.json()["id"], later.pk]
    assert user_balance_u(user_id=bettor.pk) == 8_000_000
    assert tvl_get().pending_withdrawals_u == 500_000  # the early one, still waiting for a second person


def test_a_registered_address_does_not_lift_the_amount_threshold(bettor, staff, settings):
    settings.WITHDRAWAL_APPROVAL_THRESHOLD_U = 1_000_000
    _registered_long_ago(bettor)
    withdrawal, _ = withdrawal_request(
        user=bettor, amount_u=1_000_001, destination=BETTOR_WALLET, source="api", acting_user=staff["finance"]
    )
    assert withdrawal.needs_approval is True
    assert withdrawals_process(source="cli").claimed == 0


# --- the address book API ----------------------------------------------------------------------


def test_the_address_book_is_the_callers_own_and_refuses_bad_input(bettor, staff):
    client = api_client_for(bettor)
    first = client.post("/api/v1/me/payout-addresses", {"address": BETTOR_WALLET}, format="json")
    again = client.post("/api/v1/me/payout-addresses", {"address": BETTOR_WALLET.lower()}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    audits = AuditEvent.objects.filter(action="payout_address.register").count()
    assert audits == 1
    hostile = [
        {"address": "0x123"},
        {"address": "0x" + "zz" * 20},
        {"address": ""},
        {"address": ATTACKER + "00"},
        {"address": ATTACKER, "label": "x" * 65},
        {"address": ["0x" + "11" * 20]},
        {},
    ]
    for body in hostile:
        response = client.post("/api/v1/me/payout-addresses", body, format="json")
        assert response.status_code == 400 and response.json()["code"], (body, response.content)
    assert PayoutAddress.objects.count() == 1
    # staff registering "for" the bettor only ever writes their own book: user_id is not an input
    api_client_for(staff["finance"]).post(
        "/api/v1/me/payout-addresses", {"address": ATTACKER, "user_id": str(bettor.pk)}, format="json"
    )
    assert list(PayoutAddress.objects.filter(user=bettor).values_list("address", flat=True)) == [BETTOR_WALLET.lower()]
    listed = client.get("/api/v1/me/payout-addresses").json()
    assert [row["address"] for row in listed["results"]] == [BETTOR_WALLET.lower()]
    assert APIClient().get("/api/v1/me/payout-addresses").status_code == 401


# --- the same permission in the service: admin and commands -------------------------------------


def test_the_services_refuse_the_wrong_role_whatever_the_door(bettor, staff):
    round_create()
    before = _written()
    for source in ("api", "admin", "cli"):
        for role in ("auditor", "operator"):
            with pytest.raises(PermissionDenied):
                withdrawal_request(
                    user=bettor, amount_u=500_000, destination=BETTOR_WALLET, source=source, acting_user=staff[role]
                )
        for role in ("auditor", "finance"):
            with pytest.raises(PermissionDenied):
                bet_place(user=bettor, side="UP", stake_u=1_000_000, source=source, acting_user=staff[role])
            with pytest.raises(PermissionDenied):
                ops_emergency_stop(active=True, reason="x", actor=staff[role], source=source)
            with pytest.raises(PermissionDenied):
                circuit_breaker_reset(reason="x", actor=staff[role], source=source)
    # a non-staff user holding the permission (a mis-assigned group) is refused too
    outsider = UserFactory()
    outsider.groups.add(*staff["finance"].groups.all())
    with pytest.raises(PermissionDenied):
        withdrawal_request(
            user=bettor, amount_u=500_000, source="api", acting_user=type(outsider).objects.get(pk=outsider.pk)
        )
    assert _written() == before
    assert user_balance_u(user_id=bettor.pk) == 10_000_000


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_the_admin_does_not_switch_the_stop_for_finance_or_the_auditor(staff, role):
    client = Client()
    client.force_login(staff[role])
    url = "/admin/ops/opsswitch/"
    page = client.get(url)
    assert page.status_code == 200 and b"emergency_stop_on" not in page.content
    pk = OpsSwitch.objects.get(name=OpsSwitch.Name.EMERGENCY_STOP).pk
    client.post(url, {"action": "emergency_stop_on", "_selected_action": [pk], "confirm": "yes", "reason": "x"})
    assert betting_halt() is None
    # the operator's admin does
    operator = Client()
    operator.force_login(staff["operator"])
    operator.post(url, {"action": "emergency_stop_on", "_selected_action": [pk], "confirm": "yes", "reason": "drill"})
    assert betting_halt().code == "emergency_stop"


def test_the_withdraw_command_follows_the_address_book_rule(bettor, staff):
    # the operator at the shell has no Django user: the shell is the authority, the book still rules
    out = StringIO()
    call_command("withdraw", "--user", bettor.email, "--amount", "500000", "--destination", ATTACKER, stdout=out)
    assert "(needs staff approval)" in out.getvalue()
    held = Withdrawal.objects.get()
    assert (held.needs_approval, held.requested_by) == (True, None)
    _registered_long_ago(bettor)
    out = StringIO()
    call_command("withdraw", "--user", bettor.email, "--amount", "700000", stdout=out)
    assert "needs staff approval" not in out.getvalue() and BETTOR_WALLET.lower() in out.getvalue()
    out = StringIO()
    call_command("process_withdrawals", stdout=out)
    assert "1 completed" in out.getvalue()
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 700_000
    assert user_balance_u(user_id=bettor.pk) == 8_800_000
    assert Withdrawal.objects.get(pk=held.pk).status == Withdrawal.Status.QUEUED
    assert_ledger_invariants()


def test_the_simulated_wallet_default_is_not_registered_either(bettor, staff):
    # the runbook's staff call on a bettor with no known address: the simulated wallet, held
    response = api_client_for(staff["finance"]).post(
        "/withdrawals", {"user_id": str(bettor.pk), "amount_u": 500_000}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["destination"], body["needs_approval"]) == (simulated_wallet_address(user_id=bettor.pk), True)
    assert withdrawals_process(source="cli").claimed == 0


def test_roles_hold_each_act_once():
    from django.contrib.auth.models import Group

    role_user("auditor")  # syncs the roles
    held = {
        group.name: set(group.permissions.values_list("content_type__app_label", "codename"))
        for group in Group.objects.filter(name__in=["operator", "finance", "auditor"])
    }
    assert ("betting", "place_bet_on_behalf") in held["operator"]
    assert ("withdrawals", "request_withdrawal_on_behalf") in held["finance"]
    assert ("ops", "change_opsswitch") in held["operator"]
    assert ("betting", "place_bet_on_behalf") not in held["finance"] | held["auditor"]
    assert ("withdrawals", "request_withdrawal_on_behalf") not in held["operator"] | held["auditor"]
    assert ("ops", "change_opsswitch") not in held["finance"] | held["auditor"]
    assert all(codename.startswith("view_") for _, codename in held["auditor"])
