"""The bets API counts accepted and refused bets for /metrics (labels: side, error code; never user data)."""

import pytest
from prometheus_client import REGISTRY

from tests.factories import fund

pytestmark = pytest.mark.django_db


def _sample(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_accepted_and_refused_bets_are_counted(api, bettor, open_round, new_key):
    fund(bettor, 1_000_000)
    client = api(bettor)
    accepted_before = _sample("betting_bets_accepted_total", {"side": "UP"})
    funds_before = _sample("betting_bets_rejected_total", {"reason": "insufficient_funds"})
    invalid_before = _sample("betting_bets_rejected_total", {"reason": "invalid"})
    key = new_key()

    assert (
        client.post(
            "/api/v1/bets", {"side": "UP", "stake_u": 400_000}, format="json", HTTP_IDEMPOTENCY_KEY=key
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/bets", {"side": "UP", "stake_u": 400_000}, format="json", HTTP_IDEMPOTENCY_KEY=key
        ).status_code
        == 200
    )
    assert (
        client.post("/api/v1/bets", {"side": "UP", "stake_u": 900_000}, format="json").json()["code"]
        == "insufficient_funds"
    )
    assert client.post("/api/v1/bets", {"side": "UP", "stake_u": 1.5}, format="json").json()["code"] == "invalid"

    assert _sample("betting_bets_accepted_total", {"side": "UP"}) == accepted_before + 1  # the replay is not a new bet
    assert _sample("betting_bets_rejected_total", {"reason": "insufficient_funds"}) == funds_before + 1
    assert _sample("betting_bets_rejected_total", {"reason": "invalid"}) == invalid_before + 1
