"""Each rule of the withdrawals app stated once: the webhook's transport in `withdrawals.webhooks`, the
deposit and withdrawal rules in the services, one permission refusal, one idempotency definition."""

import ast
import hashlib
import inspect
import json
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

import withdrawals.exceptions
from betting.exceptions import BettingHalted
from common.errors import ApplicationError, IdempotencyConflict, NotFound, PermissionDenied
from common.parsers import MAX_JSON_DEPTH
from ledger.models import LedgerBatch
from ledger.selectors import user_balance_u
from ops.services import ops_emergency_stop
from tests.factories import UserFactory, role_user
from tests.withdrawals.helpers import ADDRESS, post_webhook, webhook_body
from withdrawals.exceptions import ProcessingHalted
from withdrawals.models import Deposit, Withdrawal
from withdrawals.services import (
    deposit_simulate,
    deposit_webhook_credit,
    withdrawal_approve,
    withdrawal_fail,
    withdrawal_request,
    withdrawal_request_digest,
    withdrawal_resolve,
    withdrawals_process,
)
from withdrawals.webhooks import webhook_payload_verify, webhook_signature

pytestmark = [pytest.mark.money, pytest.mark.django_db]

SERVICES = Path(inspect.getfile(withdrawal_request)).parent


# --- the webhook: transport at the door, the deposit rule in the service -------------------------


def test_the_service_credits_a_verified_payload_and_looks_at_no_signature_or_timestamp(bettor):
    # given: what the API view hands over once the transport checks passed; no timestamp in it at all
    payload = {"tx_id": "chain-0x1", "amount_u": 1_250_000, "user_id": str(bettor.pk)}
    # when
    first, created = deposit_webhook_credit(payload=payload)
    again, created_again = deposit_webhook_credit(payload=payload)
    # then: credited once; the replay says so in its return value
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert user_balance_u(user_id=bettor.pk) == 1_250_000
    assert LedgerBatch.objects.filter(ref_type="deposit").count() == 1
    assert not hasattr(again, "credited")  # nothing stuck onto the model instance


@pytest.mark.parametrize(
    ("body", "signature", "status", "code"),
    [
        (b'{"tx_id": "t"}', "sha256=" + "0" * 64, 401, "invalid_signature"),
        (b"not json", None, 400, "invalid_webhook"),
        (b"[1, 2]", None, 400, "invalid_webhook"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), None, 400, "json_too_deep"),
        (b'{"tx_id": "\\ud800"}', None, 400, "invalid_text"),
        (json.dumps({"tx_id": "t", "amount_u": 1}).encode(), None, 400, "stale_timestamp"),
        (json.dumps({"tx_id": "t", "timestamp": int(time.time()) - 3600}).encode(), None, 400, "stale_timestamp"),
    ],
    ids=["bad-signature", "not-json", "not-an-object", "too-deep", "lone-surrogate", "no-timestamp", "stale"],
)
def test_a_refused_delivery_never_reaches_the_service(monkeypatch, body, signature, status, code):
    reached = []
    monkeypatch.setattr("withdrawals.apis.deposit_webhook_credit", lambda **kwargs: reached.append(kwargs))
    response = post_webhook(APIClient(), body, signature=signature)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert reached == []
    assert Deposit.objects.count() == 0


def test_a_good_delivery_hands_the_service_exactly_the_signed_payload(bettor, monkeypatch):
    body = webhook_body(tx_id="chain-0x2", user_id=str(bettor.pk), amount_u=3_000_000)
    handed = []

    def service(*, payload):
        handed.append(payload)
        return deposit_webhook_credit(payload=payload)

    monkeypatch.setattr("withdrawals.apis.deposit_webhook_credit", service)
    response = post_webhook(APIClient(), body)
    assert response.status_code == 200, response.content
    assert handed == [json.loads(body)]
    assert webhook_payload_verify(raw_body=body, signature=webhook_signature(raw_body=body)) == json.loads(body)


def _names(module: Path) -> set[str]:
    """Every module imported and every name or attribute used in `module`'s code (not its prose)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update([node.module or "", *(alias.name for alias in node.names)])
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def test_the_signature_and_the_clock_are_checked_in_one_module_only():
    transport = {"hmac", "DEPOSIT_WEBHOOK_SECRET", "DEPOSIT_WEBHOOK_TOLERANCE_SECONDS", "json_loads_strict", "time"}
    for module in sorted(SERVICES.glob("*.py")):
        assert _names(module) & transport == set(), module.name
    assert transport <= _names(Path(inspect.getfile(webhook_payload_verify)))


# --- idempotency: one key rule, one digest, the replay in the return value ------------------------


def test_a_replay_returns_created_false_and_moves_nothing(funded_bettor):
    first, created = withdrawal_request(
        user=funded_bettor, amount_u=2_000_000, destination=ADDRESS, source="api", idempotency_key="k-1"
    )
    again, created_again = withdrawal_request(
        user=funded_bettor, amount_u=2_000_000, destination=ADDRESS, source="api", idempotency_key="k-1"
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert not hasattr(again, "replayed")
    assert user_balance_u(user_id=funded_bettor.pk) == 98_000_000
    assert LedgerBatch.objects.filter(ref_type="withdrawal").count() == 1


def _old_digest(user, amount_u: int, destination: str) -> str:
    """The digest withdrawals stored before the definition moved to common.idempotency, verbatim."""
    return hashlib.sha256(
        json.dumps([str(user.pk), amount_u, destination or ""], separators=(",", ":")).encode()
    ).hexdigest()


@pytest.mark.parametrize("destination", [ADDRESS, ADDRESS.upper().replace("0X", "0x"), ""])
def test_the_digest_is_byte_for_byte_the_one_stored_before(funded_bettor, destination):
    assert withdrawal_request_digest(user=funded_bettor, amount_u=1_234_567, destination=destination) == _old_digest(
        funded_bettor, 1_234_567, destination
    )


def test_a_key_stored_with_the_old_digest_still_replays_and_still_refuses_another_body(funded_bettor):
    # given: a withdrawal whose digest was written by the old code
    first, _ = withdrawal_request(
        user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api", idempotency_key="old-key"
    )
    Withdrawal.objects.filter(pk=first.pk).update(request_digest=_old_digest(funded_bettor, 1_000_000, ADDRESS))
    # when / then: the same request replays it; another amount under the key is the common 422
    again, created = withdrawal_request(
        user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api", idempotency_key="old-key"
    )
    assert (again.pk, created) == (first.pk, False)
    with pytest.raises(IdempotencyConflict) as raised:
        withdrawal_request(
            user=funded_bettor, amount_u=1_000_001, destination=ADDRESS, source="api", idempotency_key="old-key"
        )
    assert (raised.value.code, raised.value.status) == ("idempotency_conflict", 422)
    assert Withdrawal.objects.count() == 1
    assert user_balance_u(user_id=funded_bettor.pk) == 99_000_000


# --- one permission refusal, one class per code --------------------------------------------------


def test_every_staff_power_is_refused_with_the_one_permission_denied(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=20_000_000, destination=ADDRESS, source="api")
    auditor = role_user("auditor")
    outsider = UserFactory()  # holds every permission below but is not staff: still refused
    for codename in ("approve_withdrawal", "fail_withdrawal", "process_withdrawal", "request_withdrawal_on_behalf"):
        outsider.user_permissions.add(Permission.objects.get(content_type__app_label="withdrawals", codename=codename))
    outsider = type(outsider).objects.get(pk=outsider.pk)
    for who in (auditor, outsider):
        calls = [
            lambda who=who: withdrawal_approve(withdrawal_id=withdrawal.pk, acting_user=who),
            lambda who=who: withdrawal_fail(withdrawal_id=withdrawal.pk, reason="r", source="admin", acting_user=who),
            lambda who=who: withdrawal_resolve(withdrawal_id=withdrawal.pk, source="admin", acting_user=who),
            lambda who=who: withdrawals_process(withdrawal_ids=[withdrawal.pk], source="admin", acting_user=who),
            lambda who=who: withdrawal_request(user=funded_bettor, amount_u=1_000_000, source="api", acting_user=who),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied) as raised:
                call()
            assert (raised.value.code, raised.value.status) == ("permission_denied", 403)
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"
    assert Withdrawal.objects.count() == 1
    assert user_balance_u(user_id=funded_bettor.pk) == 80_000_000


def test_the_app_defines_each_error_code_once_and_none_that_common_has():
    common_codes = {cls.code for cls in (NotFound, PermissionDenied, IdempotencyConflict)}
    classes = [
        cls
        for cls in vars(withdrawals.exceptions).values()
        if isinstance(cls, type) and issubclass(cls, ApplicationError) and cls.__module__ == "withdrawals.exceptions"
    ]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert set(codes) & common_codes == set()


def test_the_simulator_switched_off_is_the_common_not_found(settings, bettor):
    settings.SIMULATION_ENABLED = False
    with pytest.raises(NotFound):
        deposit_simulate(user_id=str(bettor.pk), amount_u=1)


def test_the_emergency_stop_answers_423_for_payouts_as_for_bets(funded_bettor):
    withdrawal_request(user=funded_bettor, amount_u=1_000_000, destination=ADDRESS, source="api")
    ops_emergency_stop(active=True, reason="drill", source="cli")
    with pytest.raises(ProcessingHalted) as raised:
        withdrawals_process(source="cli")
    assert (raised.value.code, raised.value.status) == ("emergency_stop", 423)
    assert raised.value.status == BettingHalted.status
    with pytest.raises(CommandError, match="emergency_stop"):
        call_command("process_withdrawals")
