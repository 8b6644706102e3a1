from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory, fund

pytestmark = pytest.mark.django_db


def test_token_for_email_and_password_then_me_shows_the_balance():
    alice = UserFactory(email="alice@example.com", password="correct horse 9")
    fund(alice, 2_500_000)
    client = APIClient()
    credentials = {"email": "Alice@Example.com", "password": "correct horse 9"}
    response = client.post("/api/v1/auth/token", credentials, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=alice).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"id": str(alice.pk), "email": "alice@example.com", "balance_u": 2_500_000}


@pytest.mark.parametrize(
    "body, code",
    [
        ({"email": "alice@example.com", "password": "wrong"}, "invalid_credentials"),
        ({"email": "nobody@example.com", "password": "correct horse 9"}, "invalid_credentials"),
        ({"email": "not-an-email", "password": "x"}, "invalid"),
        ({}, "invalid"),
    ],
)
def test_bad_credentials_are_refused_with_a_code(body, code):
    UserFactory(email="alice@example.com", password="correct horse 9")
    response = APIClient().post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert Token.objects.count() == 0


def test_me_needs_a_valid_token():
    assert APIClient().get("/api/v1/me").json()["code"] == "not_authenticated"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token forged")
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_me_statement_lists_only_the_callers_lines(api):
    alice, bob = UserFactory(), UserFactory()
    fund(alice, 700)
    fund(bob, 900)
    body = api(alice).get("/api/v1/me/statement").json()
    assert body["count"] == 1
    assert [(line["amount_u"], line["ref_type"]) for line in body["results"]] == [(700, "deposit")]


def test_drf_create_token_works_with_an_email():
    alice = UserFactory(email="ops@example.com")
    out = StringIO()
    call_command("drf_create_token", "ops@example.com", stdout=out)
    assert Token.objects.get(user=alice).key in out.getvalue()


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_redoc_is_gone_it_loaded_fonts_and_a_logo_from_outside(client):
    assert client.get("/api/redoc/").status_code == 404


def test_api_operations_are_grouped_by_area_with_human_titles(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert [tag["name"] for tag in schema["tags"]] == ["bets", "rounds", "me", "deposits", "withdrawals", "ops", "auth"]
    operations = {
        (method.upper(), path): (op["tags"], op["summary"])
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }
    assert operations[("POST", "/api/v1/bets")] == (["bets"], "Place a bet")
    assert operations[("GET", "/rounds/current")] == (["rounds"], "The current round (or the last settled one)")
    assert operations[("POST", "/api/v1/withdrawals")] == (["withdrawals"], "Request a withdrawal")
    assert operations[("GET", "/api/v1/me")] == (["me"], "My account and balance")
    assert operations[("POST", "/api/v1/ops/emergency-stop")] == (["ops"], "Switch the emergency stop")
    assert operations[("POST", "/simulate/deposit_webhook")][0] == ["deposits"]
    assert all(tags != ["api"] and summary for tags, summary in operations.values())
