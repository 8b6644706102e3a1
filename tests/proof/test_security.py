"""Security: other people's objects are invisible (404, never 403), staff-only stays staff-only,
the token endpoint is throttled, admin actions need their permission, the simulator is gone in
production, secrets never leak, and `check --deploy` is clean with the production settings."""

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from betting.services import bet_place
from ledger.models import LedgerEntry
from rounds.services import round_open
from tests.conftest import api_client_for
from tests.factories import UserFactory, fund
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_request

pytestmark = [pytest.mark.money, pytest.mark.django_db]

ADDRESS = "0x" + "12" * 20
# django_celery_beat's PeriodicTask admin offers run/enable/disable to anyone who may view it:
# the roles (ops.roles) never grant view_periodictask, so only superusers reach it.
PROJECT_APPS = {"betting", "ledger", "rounds", "withdrawals", "marketdata", "ops"}
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_bettors():
    """Mallory probes Alice's objects: a bet, a withdrawal, a deposit, ledger lines."""
    alice, mallory = UserFactory(), UserFactory()
    fund(alice, 20_000_000)
    fund(mallory, 20_000_000)
    round_open(code="20261223", force=True)
    bet, _ = bet_place(user=alice, side="UP", stake_u=1_000_000)
    withdrawal, _ = withdrawal_request(user=alice, amount_u=2_000_000, destination=ADDRESS, source="api")
    return alice, mallory, bet, withdrawal


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/v1/bets/{bet}"),
        ("get", "/api/v1/withdrawals/{withdrawal}"),
        ("post", "/api/v1/withdrawals/{withdrawal}/cancel"),
    ],
)
def test_another_bettors_object_is_404_like_a_missing_one(two_bettors, method, path):
    # given
    alice, mallory, bet, withdrawal = two_bettors
    client = api_client_for(mallory)
    entries = LedgerEntry.objects.count()
    # when
    theirs = getattr(client, method)(path.format(bet=bet.pk, withdrawal=withdrawal.pk))
    missing = getattr(client, method)(path.format(bet=bet.pk + 10_000, withdrawal=withdrawal.pk + 10_000))
    # then: the same answer as for an id that does not exist, and nothing changed
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json()["code"] == missing.json()["code"]
    assert LedgerEntry.objects.count() == entries
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "QUEUED"


@pytest.mark.parametrize("path", ["/api/v1/bets", "/api/v1/withdrawals", "/api/v1/deposits", "/api/v1/me/statement"])
def test_lists_show_only_the_callers_own(two_bettors, path):
    alice, mallory, bet, withdrawal = two_bettors
    body = api_client_for(mallory).get(path).json()
    rows = body["results"] if isinstance(body, dict) else body
    text = str(rows)
    assert str(alice.pk) not in text
    if path == "/api/v1/bets":
        assert rows == []
    if path == "/api/v1/withdrawals":
        assert rows == []
    if path == "/api/v1/deposits":
        assert len(rows) == 1  # mallory's own funding only
    if path == "/api/v1/me/statement":
        assert [row["amount_u"] for row in rows] == [20_000_000]


def test_me_is_the_callers_own(two_bettors):
    alice, mallory, _, _ = two_bettors
    body = api_client_for(mallory).get("/api/v1/me").json()
    assert (body["id"], body["balance_u"]) == (str(mallory.pk), 20_000_000)


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("get", "/api/v1/ops/health", None),
        ("post", "/api/v1/ops/emergency-stop", {"active": True, "reason": "x"}),
        ("post", "/api/v1/ops/circuit-breaker", {"action": "reset", "reason": "x"}),
        ("post", "/api/v1/bets", {"side": "UP", "stake_u": 1_000_000, "user_id": "{alice}"}),
        ("post", "/api/v1/withdrawals", {"amount_u": 1_000_000, "destination": ADDRESS, "user_id": "{alice}"}),
    ],
)
def test_staff_only_operations_refuse_a_bettor(two_bettors, method, path, body):
    alice, mallory, _, _ = two_bettors
    if body:
        body = {key: value.format(alice=alice.pk) if isinstance(value, str) else value for key, value in body.items()}
    entries = LedgerEntry.objects.count()
    response = getattr(api_client_for(mallory), method)(path, body, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"]
    assert LedgerEntry.objects.count() == entries


def test_token_endpoint_is_rate_limited(monkeypatch):
    # given: production-like 5/min (test settings allow 1000/min so other tests can log in freely)
    UserFactory(email="victim@example.com", password="right-password-1")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "5/min"})
    cache.clear()
    client = APIClient()
    # when: a password-guessing run
    answers = [
        client.post("/api/v1/auth/token", {"email": "victim@example.com", "password": f"guess-{i}"}, format="json")
        for i in range(6)
    ]
    # then: five wrong answers, then 429 with a code; even the right password waits now
    assert [a.status_code for a in answers] == [400] * 5 + [429]
    assert answers[-1].json()["code"] == "throttled"
    right = client.post("/api/v1/auth/token", {"email": "victim@example.com", "password": "right-password-1"})
    assert right.status_code == 429
    cache.clear()


def test_every_admin_action_needs_more_than_view_permission():
    # given: a staff user who may view everything and change nothing
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    request = RequestFactory().get("/admin/")
    request.user = viewer
    # when / then: no model admin offers them a single action
    offered = {
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in PROJECT_APPS
        for name in model_admin.get_actions(request)
    }
    assert offered == set()


def test_every_custom_admin_action_declares_its_permission():
    undeclared = [
        f"{model._meta.label}.{getattr(action, '__name__', action)}"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in PROJECT_APPS
        for action in model_admin.actions or []
        if not getattr(
            getattr(model_admin, action, action) if isinstance(action, str) else action, "allowed_permissions", None
        )
    ]
    assert undeclared == []


@override_settings(SIMULATION_ENABLED=False)
def test_simulator_is_404_with_production_settings(bettor):
    response = APIClient().post(
        "/simulate/deposit_webhook", {"user_id": str(bettor.pk), "amount_u": 1_000_000}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"]
    assert not LedgerEntry.objects.filter(account_id=f"user:{bettor.pk}:cash").exists()


def test_secrets_never_appear_in_logs_or_error_bodies(bettor, caplog):
    secret_key, webhook_secret, ops_token = (secrets.token_urlsafe(40) for _ in range(3))
    caplog.set_level(logging.DEBUG)
    with override_settings(SECRET_KEY=secret_key, DEPOSIT_WEBHOOK_SECRET=webhook_secret, OPS_TOKEN=ops_token):
        client = APIClient()
        bodies = [
            client.post(
                "/api/v1/deposits/webhook",
                b'{"tx_id": "x"}',
                content_type="application/json",
                HTTP_X_SIGNATURE="sha256=" + "0" * 64,
            ),
            client.post("/api/v1/deposits/webhook", b"not json", content_type="application/json"),
            client.get("/api/v1/ops/health", HTTP_AUTHORIZATION="Bearer wrong-token"),
            client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token"),
            client.get("/api/v1/me", HTTP_AUTHORIZATION="Token forged"),
            client.post("/api/v1/auth/token", {"email": bettor.email, "password": "nope"}, format="json"),
            client.get("/api/v1/no-such-thing"),
        ]
    assert all(400 <= response.status_code < 500 for response in bodies), [r.status_code for r in bodies]
    leaked = "\n".join([response.content.decode(errors="replace") for response in bodies] + [caplog.text])
    for secret in (secret_key, webhook_secret, ops_token):
        assert secret not in leaked


def _production_env() -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEPOSIT_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "OPS_TOKEN": secrets.token_urlsafe(32),
        "DATABASE_URL": os.environ.get("PROOF_DEPLOY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "example.com",
        "TRUSTED_PROXY_COUNT": "1",
    }


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings():
    env = _production_env()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_production_throttle_cache_is_shared_by_every_process():
    """A per-process cache would let N gunicorn workers allow N × AUTH_THROTTLE_RATE guesses."""
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=_production_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "common.cache.RedisCache"  # Django's RedisCache, one client per pool
