"""The admin: a limit changed there applies to the next bet (no restart); staff add a self-exclusion; exposure page."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from betting.models import Bet
from betting.services import bet_place
from risk.models import RiskLimits, SelfExclusion
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund, role_user

LIMITS = {
    "min_stake_u": "100000",
    "max_stake_u": "5000000",
    "max_user_round_u": "",
    "max_user_day_u": "",
    "max_round_pool_u": "",
    "max_side_ratio": "",
    "side_ratio_floor_u": "0",
}


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def bettor(db):
    round_create("20250908")
    user = UserFactory()
    fund(user, 100_000_000)
    return user


def test_a_limit_changed_in_the_admin_applies_to_the_next_bet(bettor, django_capture_on_commit_callbacks):
    bet_place(user=bettor, side="UP", stake_u=6_000_000)  # allowed: the limits in force are cached now
    client = _admin(role_user("operator"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/risk/risklimits/add/", {**LIMITS, "reason": "cap single stakes at 5 USDC"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RiskLimits.objects.get().max_stake_u == 5_000_000
    with pytest.raises(Exception) as refused:
        bet_place(user=bettor, side="UP", stake_u=6_000_000)
    assert refused.value.code == "stake_too_large"
    assert Bet.objects.count() == 1
    event = AuditEvent.objects.get(action="risk.limits.change")
    assert (event.source, event.reason, event.after["max_stake_u"]) == (
        "admin",
        "cap single stakes at 5 USDC",
        5_000_000,
    )
    # and changed again on the same row
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/risk/risklimits/1/change/", {**LIMITS, "max_stake_u": "7000000", "reason": "ease"})
    bet_place(user=bettor, side="UP", stake_u=6_000_000)
    assert Bet.objects.count() == 2


def test_a_bad_limit_in_the_admin_is_a_red_message_and_changes_nothing(bettor):
    client = _admin(role_user("operator"))
    below_min = client.post("/admin/risk/risklimits/add/", {**LIMITS, "max_stake_u": "50", "reason": "oops"})
    assert below_min.status_code == 200 and "errornote" in below_min.content.decode()  # the form, with its error
    response = client.post(
        "/admin/risk/risklimits/add/", {**LIMITS, "max_stake_u": str(10**13), "reason": "oops"}, follow=True
    )
    assert response.status_code == 200
    assert "MAX_AMOUNT_U" in response.content.decode() and "[invalid_limit]" in response.content.decode()
    assert "was added successfully" not in response.content.decode()
    assert not RiskLimits.objects.exists()
    no_reason = client.post("/admin/risk/risklimits/add/", {**LIMITS, "reason": ""})
    assert no_reason.status_code == 200  # the form again: the reason is required
    assert not RiskLimits.objects.exists()


def test_the_auditor_cannot_change_limits_in_the_admin(bettor):
    response = _admin(role_user("auditor")).post("/admin/risk/risklimits/add/", {**LIMITS, "reason": "x"})
    assert response.status_code == 403
    assert not RiskLimits.objects.exists()


def test_staff_add_a_self_exclusion_and_cannot_lift_it(bettor):
    client = _admin(role_user("operator"))
    response = client.post(
        "/admin/risk/selfexclusion/add/", {"user": str(bettor.pk), "days": "30", "reason": "asked by phone"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    exclusion = SelfExclusion.objects.get()
    assert exclusion.user == bettor
    with pytest.raises(Exception) as refused:
        bet_place(user=bettor, side="UP", stake_u=1_000_000)
    assert refused.value.code == "self_excluded"
    assert client.post(f"/admin/risk/selfexclusion/{exclusion.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SelfExclusion.objects.count() == 1


def test_the_exposure_page_shows_the_round(bettor):
    bet_place(user=bettor, side="UP", stake_u=2_000_000)
    page = _admin(role_user("auditor")).get("/admin/risk/risklimits/exposure/?round=20250908")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Round 20250908" in text and "2.00 USDC" in text and "2,000,000 u" in text and bettor.email in text
    assert (
        "No round"
        in _admin(role_user("auditor")).get("/admin/risk/risklimits/exposure/?round=20991231").content.decode()
    )
    assert _admin(UserFactory(is_staff=False)).get("/admin/risk/risklimits/exposure/").status_code == 302
