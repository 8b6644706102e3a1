"""Exposure equals a hand computation: the command, the staff endpoint and the gauges show the same numbers."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from betting.services import bet_place
from ops.dashboard import metrics_text
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund, role_user

pytestmark = pytest.mark.money


@pytest.fixture
def bettors(db):
    round_create("20250908")  # fee 100 bps
    a, b, c = (UserFactory(email=f"{name}@example.com") for name in ("alice", "bob", "carol"))
    for user in (a, b, c):
        fund(user, 100_000_000)
    bet_place(user=a, side="UP", stake_u=3_000_000)
    bet_place(user=b, side="UP", stake_u=700_001)
    bet_place(user=b, side="UP", stake_u=299_999)
    bet_place(user=c, side="DOWN", stake_u=2_000_000)
    bet_place(user=a, side="DOWN", stake_u=500_000)
    return a, b, c


# By hand. UP 4 000 000 u (alice 3 000 000, bob 700 001 + 299 999), DOWN 2 500 000 u (carol 2 000 000,
# alice 500 000); pool 6 500 000 u.
# UP wins: fee = floor(2 500 000 × 100 / 10 000) = 25 000; distributable 2 475 000 over 4 000 000:
#   alice 3 000 000 + floor(3 000 000 × 2 475 000 / 4 000 000) = 3 000 000 + 1 856 250 = 4 856 250
#   bob   700 001 + 433 125 (433 125.61875) and 299 999 + 185 624 (185 624.38125) = 1 618 749
#   paid 6 474 999, house 25 001 (fee 25 000 + dust 1: the per-bet floors, not bob's total's)
# DOWN wins: fee = floor(4 000 000 × 100 / 10 000) = 40 000; distributable 3 960 000 over 2 500 000:
#   carol 2 000 000 + 3 168 000 = 5 168 000; alice 500 000 + 792 000 = 1 292 000
#   paid 6 460 000, house 40 000
# Shares of a side (bps, floor): alice 7 500 of UP, bob 2 500 of UP, carol 8 000 of DOWN, alice 2 000 of DOWN.
# Shares of the pool: 3/6.5 -> 4 615, 2/6.5 -> 3 076, 1/6.5 -> 1 538, 0.5/6.5 -> 769.
EXPECTED_SIDES = {
    "UP": {
        "staked_u": 4_000_000,
        "bets": 3,
        "void_if_wins": False,
        "fee_if_wins_u": 25_000,
        "payout_if_wins_u": 6_474_999,
        "house_if_wins_u": 25_001,
    },
    "DOWN": {
        "staked_u": 2_500_000,
        "bets": 2,
        "void_if_wins": False,
        "fee_if_wins_u": 40_000,
        "payout_if_wins_u": 6_460_000,
        "house_if_wins_u": 40_000,
    },
}
EXPECTED_TOP = [
    ("alice@example.com", "UP", 3_000_000, 1, 7_500, 4_615, 4_856_250),
    ("carol@example.com", "DOWN", 2_000_000, 1, 8_000, 3_076, 5_168_000),
    ("bob@example.com", "UP", 1_000_000, 2, 2_500, 1_538, 1_618_749),
    ("alice@example.com", "DOWN", 500_000, 1, 2_000, 769, 1_292_000),
]


def _top(body):
    return [
        (
            b["email"],
            b["side"],
            b["staked_u"],
            b["bets"],
            b["side_share_bps"],
            b["pool_share_bps"],
            b["payout_if_wins_u"],
        )
        for b in body["top_bettors"]
    ]


def test_exposure_command_equals_the_hand_computation(bettors):
    out = StringIO()
    call_command("exposure", "--round", "20250908", "--json", stdout=out)
    body = json.loads(out.getvalue())
    assert body["pool_u"] == 6_500_000
    assert body["bets"] == 5
    assert body["sides"] == EXPECTED_SIDES
    assert body["worst_case_payout_u"] == 6_474_999
    assert _top(body) == EXPECTED_TOP
    text = StringIO()
    call_command("exposure", "--round", "20250908", stdout=text)
    assert "worst-case payout 6474999 u" in text.getvalue()
    assert "75.00%" in text.getvalue()


def test_the_staff_endpoint_shows_the_same_numbers_and_checks_the_permission(bettors, api):
    alice = bettors[0]
    assert api(alice).get("/api/v1/risk/exposure/rounds/20250908").status_code == 403
    response = api(role_user("auditor")).get("/api/v1/risk/exposure/rounds/20250908")
    assert response.status_code == 200
    assert response.json()["sides"] == EXPECTED_SIDES
    assert _top(response.json()) == EXPECTED_TOP
    mine = api(role_user("operator")).get(f"/api/v1/risk/exposure/users/{alice.pk}").json()
    # alice: 3 000 000 UP, 500 000 DOWN; UP wins -> 4 856 250, DOWN wins -> 1 292 000
    assert mine["rounds"] == [
        {
            "round": "20250908",
            "status": "OPEN",
            "staked_u": {"UP": 3_000_000, "DOWN": 500_000},
            "payout_if_u": {"UP": 4_856_250, "DOWN": 1_292_000},
        }
    ]
    assert api(role_user("auditor")).get("/api/v1/risk/exposure/rounds/20991231").json()["code"] == "unknown_round"


def test_the_gauges_show_the_same_numbers(bettors):
    text = metrics_text().decode()
    assert 'risk_round_worst_case_payout_u{side="UP"} 6.474999e+06' in text
    assert 'risk_round_house_if_wins_u{side="DOWN"} 40000.0' in text
    assert 'risk_round_top_bettor_side_share{side="DOWN"} 0.8' in text


def test_an_empty_side_is_a_void_stakes_back(db):
    round_create("20250908")
    user = UserFactory()
    fund(user, 10_000_000)
    bet_place(user=user, side="UP", stake_u=2_000_000)
    out = StringIO()
    call_command("exposure", "--round", "20250908", "--json", stdout=out)
    sides = json.loads(out.getvalue())["sides"]
    assert sides["UP"]["void_if_wins"] and sides["UP"]["payout_if_wins_u"] == 2_000_000
    assert sides["DOWN"]["void_if_wins"] and sides["DOWN"]["house_if_wins_u"] == 0


def test_exposure_of_an_unknown_or_malformed_round_is_a_sentence(db):
    from django.core.management.base import CommandError

    for code, expected in (("20991231", "unknown_round"), ("2025-09", "invalid_round_code")):
        with pytest.raises(CommandError) as refused:
            call_command("exposure", "--round", code)
        assert f"[{expected}]" in str(refused.value)


def test_the_rules_see_the_largest_bettor_of_each_side_even_outside_the_listed_top(bettors, settings):
    from risk.exposure import exposure_concerns, round_exposure

    exposure = round_exposure(code="20250908", top=1)  # only alice's UP stake is listed
    assert [b.email for b in exposure.top] == ["alice@example.com"]
    assert {side: (b.email, b.side_share_bps) for side, b in exposure.largest.items()} == {
        "UP": ("alice@example.com", 7_500),
        "DOWN": ("carol@example.com", 8_000),
    }
    settings.OPS_BREAKER_STAKE_SHARE = 0.79
    settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = 6_500_000
    assert [(c.rule, c.text) for c in exposure_concerns()] == [
        ("side_share", "one bettor holds 80% of round 20250908's DOWN side (limit 79%)")
    ]
    from django.utils import timezone

    from ops.rules import alert_exposure, breaker_unusual_betting

    now = timezone.now()
    assert [(f.key, f.severity) for f in alert_exposure(now)] == [("exposure_side_share:20250908", "P2")]
    assert breaker_unusual_betting(now).reason == "one bettor holds 80% of round 20250908's DOWN side (limit 79%)"
    settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = 6_500_001  # the pool is below the floor: no concern
    assert exposure_concerns() == []
