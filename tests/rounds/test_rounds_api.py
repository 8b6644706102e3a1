"""The public rounds read API: /rounds/current (runbook path and /api/v1), history, one round by code."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from betting.services import bet_place
from rounds.models import Round
from rounds.services import round_lock, round_settle
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund

pytestmark = pytest.mark.django_db

CURRENT_FIELDS = {
    "code",
    "symbol",
    "status",
    "result",
    "lock_at",
    "settle_at",
    "fee_bps",
    "up_pool_u",
    "down_pool_u",
    "commit_hash",
}


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.mark.parametrize("path", ["/rounds/current", "/api/v1/rounds/current"])
def test_no_round_ever_is_404_with_a_clear_message(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "no_current_round"
    assert response.json()["detail"] == "No round has been opened yet; a round opens before 09:00 ET on a trading day."


@pytest.mark.parametrize("path", ["/rounds/current", "/api/v1/rounds/current"])
def test_after_settlement_current_answers_the_settled_round(anonymous, path):
    # the manual's steps 6 and 8 curl /rounds/current after the close and expect to read SETTLED there
    round_ = round_create("20250908")
    up, down = UserFactory(), UserFactory()
    fund(up, 10_000_000)
    fund(down, 10_000_000)
    bet_place(user=up, side="UP", stake_u=3_000_000)
    bet_place(user=down, side="DOWN", stake_u=1_250_000)
    round_lock(code=round_.code)
    assert anonymous.get(path).json()["status"] == "LOCKED"
    round_settle(code=round_.code, result="DOWN")
    round_create("20250905", status=Round.Status.SETTLED)  # an older settled round is not the one shown

    response = anonymous.get(path)

    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["status"], body["result"]) == ("20250908", "SETTLED", "DOWN")
    assert (body["up_pool_u"], body["down_pool_u"]) == (3_000_000, 1_250_000)
    # a new round opening takes its place
    round_create("20250909")
    assert (anonymous.get(path).json()["code"], anonymous.get(path).json()["status"]) == ("20250909", "OPEN")


@pytest.mark.parametrize("path", ["/rounds/current", "/api/v1/rounds/current"])
def test_current_round_needs_no_token_and_shows_the_pools(anonymous, path):
    # given
    round_ = round_create("20250908")
    up, down = UserFactory(), UserFactory()
    fund(up, 10_000_000)
    fund(down, 10_000_000)
    bet_place(user=up, side="UP", stake_u=3_000_000)
    bet_place(user=down, side="DOWN", stake_u=1_250_000)
    # when
    response = anonymous.get(path)
    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CURRENT_FIELDS
    assert body["code"] == "20250908"
    assert (body["status"], body["result"], body["fee_bps"]) == ("OPEN", None, 100)
    assert (body["up_pool_u"], body["down_pool_u"]) == (3_000_000, 1_250_000)
    assert body["commit_hash"] == round_.commit_hash
    assert body["lock_at"].startswith(round_.lock_at.strftime("%Y-%m-%dT%H:%M"))


def test_a_stale_token_does_not_break_the_public_page():
    round_create("20250908")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/rounds/current").status_code == 200


def test_the_locked_round_is_current_until_settled(anonymous):
    round_create("20250908")
    round_lock(code="20250908")
    body = anonymous.get("/rounds/current").json()
    assert (body["code"], body["status"]) == ("20250908", "LOCKED")


def test_the_earliest_open_round_is_current(anonymous):
    round_create("20250909")
    round_create("20250908")
    assert anonymous.get("/rounds/current").json()["code"] == "20250908"


def test_history_is_newest_first_and_paginated(anonymous):
    for code in ("20250903", "20250904", "20250905"):
        round_create(code, status=Round.Status.SETTLED)
    round_create("20250908")
    page = anonymous.get("/api/v1/rounds?limit=2").json()
    assert page["count"] == 4
    assert [r["code"] for r in page["results"]] == ["20250908", "20250905"]
    assert set(page["results"][0]) == CURRENT_FIELDS
    settled = anonymous.get("/api/v1/rounds?status=SETTLED").json()
    assert [r["code"] for r in settled["results"]] == ["20250905", "20250904", "20250903"]
    assert anonymous.get("/api/v1/rounds?status=NOPE").json()["code"] == "invalid"


def test_one_round_with_result_prices_pools_and_hashes(anonymous):
    # given: a settled round as settlement leaves it
    round_ = round_create("20250905", status=Round.Status.SETTLED)
    Round.objects.filter(pk=round_.pk).update(
        result=Round.Result.UP,
        up_pool_u=7_000_000,
        down_pool_u=3_000_001,
        reference_price=Decimal("19500.250000"),
        reference_source="official_close",
        close_price=Decimal("19612.500000"),
        close_source="official_close",
        settlement_digest="d" * 64,
    )
    # when
    response = anonymous.get("/api/v1/rounds/20250905")
    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= CURRENT_FIELDS
    assert (body["status"], body["result"]) == ("SETTLED", "UP")
    assert (body["up_pool_u"], body["down_pool_u"], body["pool_u"]) == (7_000_000, 3_000_001, 10_000_001)
    assert (body["reference_price"], body["reference_source"]) == ("19500.250000", "official_close")
    assert (body["close_price"], body["close_source"]) == ("19612.500000", "official_close")
    assert (body["commit_hash"], body["settlement_digest"]) == ("0" * 64, "d" * 64)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("20991231", 404, "unknown_round"),
        ("2025-09-05", 400, "invalid_round_code"),
        ("20250231", 400, "invalid_round_code"),
    ],
)
def test_unknown_or_malformed_round_code(anonymous, code, status, error):
    response = anonymous.get(f"/api/v1/rounds/{code}")
    assert response.status_code == status
    assert response.json()["code"] == error
