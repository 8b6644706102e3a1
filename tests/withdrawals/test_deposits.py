import json
import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory
from tests.withdrawals.helpers import post_webhook, webhook_body
from withdrawals.models import Deposit, DepositIntent
from withdrawals.webhooks import webhook_signature

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _written() -> tuple[int, int, int]:
    return Deposit.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()


def test_signed_webhook_credits_exactly_once(bettor):
    # given
    body = webhook_body(tx_id="chain-0xabc", user_id=str(bettor.pk), amount_u=2_500_001)
    # when
    response = post_webhook(APIClient(), body)
    # then
    assert response.status_code == 200, response.content
    assert response.json()["credited"] is True
    assert response.json()["amount_u"] == 2_500_001
    assert user_balance_u(user_id=bettor.pk) == 2_500_001
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -2_500_001
    deposit = Deposit.objects.get(tx_id="chain-0xabc")
    assert deposit.source == "webhook"
    assert deposit.raw_payload["amount_u"] == 2_500_001
    assert_ledger_invariants()


def test_ten_deliveries_of_one_tx_credit_once_and_answer_200_each_time(bettor):
    body = webhook_body(tx_id="chain-dup", user_id=str(bettor.pk), amount_u=1_000_000)
    client = APIClient()
    answers = [post_webhook(client, body) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10
    assert [r.json()["credited"] for r in answers] == [True] + [False] * 9
    assert len({r.json()["id"] for r in answers}) == 1
    assert user_balance_u(user_id=bettor.pk) == 1_000_000
    assert Deposit.objects.count() == 1
    assert LedgerBatch.objects.filter(ref_type="deposit").count() == 1
    assert_ledger_invariants()


def test_same_tx_with_another_amount_or_user_is_a_conflict(bettor):
    other = UserFactory()
    client = APIClient()
    assert (
        post_webhook(client, webhook_body(tx_id="t-1", user_id=str(bettor.pk), amount_u=1_000_000)).status_code == 200
    )
    before = _written()
    changed_amount = post_webhook(client, webhook_body(tx_id="t-1", user_id=str(bettor.pk), amount_u=2_000_000))
    changed_user = post_webhook(client, webhook_body(tx_id="t-1", user_id=str(other.pk), amount_u=1_000_000))
    assert changed_amount.status_code == 409 and changed_amount.json()["code"] == "deposit_conflict"
    assert changed_user.status_code == 409
    assert _written() == before
    assert user_balance_u(user_id=bettor.pk) == 1_000_000
    assert user_balance_u(user_id=other.pk) == 0
    assert_ledger_invariants()


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "garbage", webhook_signature(raw_body=b"another body")],
)
def test_bad_signature_is_refused_and_writes_nothing(bettor, signature):
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000)
    before = _written()
    response = post_webhook(APIClient(), body, signature=signature)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert _written() == before


def test_signature_with_another_secret_is_refused(bettor):
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000)
    response = post_webhook(APIClient(), body, signature=webhook_signature(raw_body=body, secret="not-ours"))
    assert response.status_code == 401
    assert user_balance_u(user_id=bettor.pk) == 0


def test_bare_hex_signature_is_accepted(bettor):
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000)
    response = post_webhook(APIClient(), body, signature=webhook_signature(raw_body=body).removeprefix("sha256="))
    assert response.status_code == 200


@override_settings(DEPOSIT_WEBHOOK_TOLERANCE_SECONDS=300)
# 10 s past the window: int(time.time()) truncates and the request takes time, so ±301 raced the clock.
@pytest.mark.parametrize("age_seconds", [310, 3600, -310])
def test_replayed_old_or_future_timestamp_is_refused(bettor, age_seconds):
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000, timestamp=int(time.time()) - age_seconds)
    before = _written()
    response = post_webhook(APIClient(), body)
    assert response.status_code == 400
    assert response.json()["code"] == "stale_timestamp"
    assert _written() == before


@override_settings(DEPOSIT_WEBHOOK_TOLERANCE_SECONDS=300)
def test_timestamp_inside_window_is_accepted(bettor):
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000, timestamp=int(time.time()) - 200)
    assert post_webhook(APIClient(), body).status_code == 200


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"amount_u": 0}, 400, "invalid_amount"),
        ({"amount_u": -5}, 400, "invalid_amount"),
        ({"amount_u": 1.5}, 400, "invalid_amount"),
        ({"amount_u": 1.0}, 400, "invalid_amount"),
        ({"amount_u": "1000000"}, 400, "invalid_amount"),
        ({"amount_u": True}, 400, "invalid_amount"),
        ({"amount_u": None}, 400, "invalid_amount"),
        ({"amount_u": 10**13}, 400, "invalid_amount"),
        ({"timestamp": "yesterday"}, 400, "stale_timestamp"),
        ({"timestamp": None}, 400, "stale_timestamp"),
        ({"tx_id": ""}, 400, "invalid_tx_id"),
        ({"tx_id": 12345}, 400, "invalid_tx_id"),
        ({"tx_id": "x" * 129}, 400, "invalid_tx_id"),
        ({"from_address": "0x123"}, 400, "invalid_from_address"),
        ({"reference": "DEP-NOPE"}, 400, "unknown_reference"),
    ],
)
def test_bad_payload_is_a_4xx_and_writes_nothing(bettor, fields, status, code):
    payload = {"user_id": str(bettor.pk), "amount_u": 1_000_000, **fields}
    body = webhook_body(**payload)
    before = _written()
    response = post_webhook(APIClient(), body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert _written() == before


@pytest.mark.parametrize("user_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", 42, None])
def test_unknown_or_malformed_user_is_refused(db, user_id):
    body = webhook_body(user_id=user_id, amount_u=1_000_000)
    response = post_webhook(APIClient(), body)
    assert response.status_code in (400, 404)
    assert response.json()["code"] in ("unknown_user", "invalid_webhook")
    assert Deposit.objects.count() == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_body_with_valid_signature_is_a_400(db, raw):
    response = post_webhook(APIClient(), raw)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook"


def test_webhook_needs_no_session_or_csrf(bettor):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(bettor)
    body = webhook_body(user_id=str(bettor.pk), amount_u=1_000_000)
    assert post_webhook(client, body).status_code == 200


def test_intent_gives_address_reference_and_eip681_uri(bettor, api):
    response = api(bettor).post("/api/v1/deposits/intents", {"amount_u": 25_000_000}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reference"].startswith("DEP-")
    assert body["address"].startswith("0x") and len(body["address"]) == 42
    assert body["payment_uri"] == (
        f"ethereum:{body['token_address']}@{body['chain_id']}/transfer?address={body['address']}&uint256=25000000"
    )
    assert api(bettor).get("/api/v1/deposits/intents").json()["results"][0]["reference"] == body["reference"]


def test_intent_without_amount_has_no_uint256(bettor, api):
    response = api(bettor).post("/api/v1/deposits/intents", {}, format="json")
    assert response.status_code == 201
    assert "uint256" not in response.json()["payment_uri"]
    assert api(bettor).post("/api/v1/deposits/intents", {"amount_u": "5"}, format="json").status_code == 400
    assert api(bettor).post("/api/v1/deposits/intents", {"amount_u": 0}, format="json").status_code == 400


def test_webhook_matches_deposit_to_intent_by_reference(bettor, api):
    reference = api(bettor).post("/api/v1/deposits/intents", {}, format="json").json()["reference"]
    body = webhook_body(reference=reference, amount_u=3_000_000, from_address="0x" + "cd" * 20)
    response = post_webhook(APIClient(), body)
    assert response.status_code == 200, response.content
    deposit = Deposit.objects.get()
    assert deposit.user == bettor
    assert deposit.intent == DepositIntent.objects.get(reference=reference)
    assert user_balance_u(user_id=bettor.pk) == 3_000_000
    listed = api(bettor).get("/api/v1/deposits").json()["results"]
    assert [(row["amount_u"], row["reference"]) for row in listed] == [(3_000_000, reference)]
    assert_ledger_invariants()


def test_reference_of_another_user_is_refused(bettor, api):
    other = UserFactory()
    reference = api(bettor).post("/api/v1/deposits/intents", {}, format="json").json()["reference"]
    response = post_webhook(APIClient(), webhook_body(reference=reference, user_id=str(other.pk), amount_u=1_000_000))
    assert response.status_code == 409
    assert response.json()["code"] == "reference_mismatch"
    assert Deposit.objects.count() == 0


def test_deposit_list_shows_only_own(bettor, api):
    other = UserFactory()
    post_webhook(APIClient(), webhook_body(user_id=str(bettor.pk), amount_u=1_000_000))
    post_webhook(APIClient(), webhook_body(user_id=str(other.pk), amount_u=2_000_000))
    assert [row["amount_u"] for row in api(bettor).get("/api/v1/deposits").json()["results"]] == [1_000_000]
    assert APIClient().get("/api/v1/deposits").status_code == 401


# --- the runbook's simulator ------------------------------------------------------------------


def test_simulate_deposit_webhook_credits_as_the_runbook_shows(bettor):
    response = APIClient().post(
        "/simulate/deposit_webhook",
        data=json.dumps({"user_id": str(bettor.pk), "amount_u": 1000000}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["credited"] is True
    assert response.json()["balance_u"] == 1_000_000
    assert user_balance_u(user_id=bettor.pk) == 1_000_000
    assert tvl_get().cash_u == 1_000_000
    assert Deposit.objects.get().source == "simulation"
    assert_ledger_invariants()


def test_simulate_with_amount_zero_is_the_balance_inquiry_and_credits_nothing(funded_bettor):
    before = _written()
    response = APIClient().post(
        "/simulate/deposit_webhook", {"user_id": str(funded_bettor.pk), "amount_u": 0}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "user_id": str(funded_bettor.pk),
        "amount_u": 0,
        "credited": False,
        "deposit_id": None,
        "tx_id": None,
        "balance_u": 100_000_000,
    }
    assert _written() == before


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"user_id": "", "amount_u": 1_000_000}, 400),
        ({"user_id": None, "amount_u": 1_000_000}, 400),
        ({"user_id": "not-a-uuid", "amount_u": 1_000_000}, 404),
        ({"user_id": "00000000-0000-0000-0000-000000000000", "amount_u": 1_000_000}, 404),
        ({"amount_u": -1}, 400),
        ({"amount_u": 1.5}, 400),
        ({"amount_u": "100"}, 400),
    ],
)
def test_simulate_bad_input_is_a_4xx(bettor, payload, status):
    payload = {"user_id": str(bettor.pk), **payload}
    before = _written()
    response = APIClient().post("/simulate/deposit_webhook", payload, format="json")
    assert response.status_code == status, response.content
    assert "code" in response.json()
    assert _written() == before


@override_settings(SIMULATION_ENABLED=False)
def test_simulate_endpoint_is_404_with_production_settings(bettor):
    response = APIClient().post("/simulate/deposit_webhook", {"user_id": str(bettor.pk), "amount_u": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Deposit.objects.count() == 0


def test_production_settings_default_simulation_off():
    import importlib
    import os
    from unittest import mock

    env = {
        "SECRET_KEY": "x",
        "DEPOSIT_WEBHOOK_SECRET": "y",
        "DATABASE_URL": "sqlite:///:memory:",
        "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": "example.com",
        "TRUSTED_PROXY_COUNT": "0",
    }
    with mock.patch.dict(os.environ, env):
        os.environ.pop("SIMULATION_ENABLED", None)
        production = importlib.import_module("config.settings.production")
        production = importlib.reload(production)
    assert production.SIMULATION_ENABLED is False
