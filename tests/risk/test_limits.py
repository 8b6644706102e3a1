"""Risk limits as data: each refusal its code, a sentence and remaining_u; nothing written; no restart."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from betting.models import Bet
from betting.services import bet_place
from ledger.models import LedgerBatch, LedgerEntry
from ledger.selectors import user_balance_u
from risk.models import SelfExclusion
from risk.services import risk_limits_set, self_exclusion_create, user_limit_set
from tests.betting.conftest import round_create
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund, role_user

pytestmark = pytest.mark.money


def _written() -> tuple[int, int, int]:
    return Bet.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()


def _bettor(amount_u: int = 1_000_000_000):
    user = UserFactory()
    fund(user, amount_u)
    return user


def _post(client, body, key):
    return client.post("/api/v1/bets", body, format="json", headers={"Idempotency-Key": key})


@pytest.fixture
def open_round(db):
    return round_create()


def _refused(api, user, body, key, *, status, code):
    before = _written()
    response = _post(api(user), body, key)
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert _written() == before
    return response.json()


@pytest.mark.parametrize(
    ("changes", "bets_before", "body", "status", "code", "limit", "remaining_u"),
    [
        (
            {"min_stake_u": 2_000_000},
            [],
            {"side": "UP", "stake_u": 1_999_999},
            400,
            "stake_too_small",
            "min_stake",
            None,
        ),
        (
            {"max_stake_u": 5_000_000},
            [],
            {"side": "UP", "stake_u": 5_000_001},
            400,
            "stake_too_large",
            "max_stake",
            5_000_000,
        ),
        (
            {"max_user_round_u": 5_000_000},
            [("UP", 3_000_000)],
            {"side": "DOWN", "stake_u": 2_500_000},
            409,
            "round_stake_limit_exceeded",
            "max_user_round",
            2_000_000,
        ),
        (
            {"max_user_day_u": 4_000_000, "max_user_round_u": None},
            [("UP", 3_000_000)],
            {"side": "UP", "stake_u": 1_500_000},
            409,
            "daily_stake_limit_exceeded",
            "max_user_day",
            1_000_000,
        ),
        (
            {"max_round_pool_u": 10_000_000},
            [("UP", 4_000_000), ("DOWN", 4_000_000)],
            {"side": "UP", "stake_u": 2_500_000},
            409,
            "round_pool_cap_reached",
            "max_round_pool",
            2_000_000,
        ),
        (
            {"max_side_ratio": 3, "side_ratio_floor_u": 5_000_000},
            [("UP", 4_000_000), ("DOWN", 2_000_000)],
            {"side": "UP", "stake_u": 2_500_000},  # 6.5 > 3 x 2 = 6 USDC
            409,
            "side_imbalance_exceeded",
            "max_side_ratio",
            2_000_000,
        ),
    ],
)
def test_each_limit_refuses_with_its_code_and_remaining(
    open_round, api, new_key, changes, bets_before, body, status, code, limit, remaining_u
):
    # given limits set by staff, and some bets already in the round (from another bettor: the pool limits)
    risk_limits_set(changes=changes, reason="tighten for the test")
    bettor = _bettor()
    others = UserFactory()
    fund(others, 1_000_000_000)
    for side, stake_u in bets_before:
        bet_place(user=bettor if code.startswith(("round_stake", "daily")) else others, side=side, stake_u=stake_u)
    # when / then
    body_out = _refused(api, bettor, body, new_key(), status=status, code=code)
    assert body_out["limit"] == limit
    assert body_out.get("remaining_u") == remaining_u
    assert body_out["detail"]
    assert_ledger_invariants()


def test_side_imbalance_applies_only_above_the_floor(open_round):
    risk_limits_set(changes={"max_side_ratio": 2, "side_ratio_floor_u": 10_000_000}, reason="test")
    bettor = _bettor()
    bet_place(user=bettor, side="UP", stake_u=9_000_000)  # pool 9 USDC <= floor: any imbalance
    assert Bet.objects.count() == 1


def test_a_limit_change_applies_to_the_next_bet_without_restart(open_round, django_capture_on_commit_callbacks):
    bettor = _bettor()
    bet_place(user=bettor, side="UP", stake_u=6_000_000)  # the snapshot is loaded and cached here
    with django_capture_on_commit_callbacks(execute=True):
        risk_limits_set(changes={"max_stake_u": 5_000_000}, reason="tighter")
    with pytest.raises(Exception) as refused:
        bet_place(user=bettor, side="UP", stake_u=6_000_000)
    assert refused.value.code == "stake_too_large"
    assert Bet.objects.count() == 1


def test_the_limits_cost_no_query_per_bet(open_round):
    """With no per-user total limit set, a bet makes the same queries as before the limits became data."""
    risk_limits_set(changes={"max_user_round_u": None}, reason="no per-user totals")
    bettor = _bettor()
    bet_place(user=bettor, side="UP", stake_u=1_000_000)  # loads the snapshot
    with CaptureQueriesContext(connection) as queries:
        bet_place(user=bettor, side="UP", stake_u=1_000_000)
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [q for q in sql if "risk_" in q or "self_exclusions" in q]
    assert not [q for q in sql if "SUM(" in q.upper() and "bets" in q]  # no user-totals query either
    risk_limits_set(changes={"max_user_round_u": 50_000_000}, reason="per-round total back")
    bet_place(user=bettor, side="UP", stake_u=1_000_000)  # reloads the changed snapshot (3 queries, once)
    with CaptureQueriesContext(connection) as again:
        bet_place(user=bettor, side="UP", stake_u=1_000_000)
    # The per-round total comes back from the bet's own statement (the bettor's running totals): no query more.
    assert len(again.captured_queries) == len(queries.captured_queries)
    risk_limits_set(changes={"max_user_day_u": 80_000_000}, reason="a daily total too")
    bet_place(user=bettor, side="UP", stake_u=1_000_000)  # reloads the snapshot
    with CaptureQueriesContext(connection) as daily:
        bet_place(user=bettor, side="UP", stake_u=1_000_000)
    assert len(daily.captured_queries) == len(queries.captured_queries) + 2  # the bettor's row lock and their day SUM


def test_the_limit_change_is_audited_with_before_and_after(db):
    operator = role_user("operator")
    risk_limits_set(changes={"max_round_pool_u": 1_000_000_000}, reason="cap pools", acting_user=operator, source="api")
    event = AuditEvent.objects.get(action="risk.limits.change")
    assert (event.actor, event.reason, event.source) == (operator, "cap pools", "api")
    assert event.before["max_round_pool_u"] is None
    assert event.after["max_round_pool_u"] == 1_000_000_000


@pytest.mark.parametrize(
    ("changes", "reason", "code"),
    [
        ({"max_stake_u": 10}, "x", "invalid_limit"),  # below min stake
        ({"min_stake_u": 0}, "x", "invalid_limit"),
        ({"bogus": 1}, "x", "invalid_limit"),
        ({"max_stake_u": -5}, "x", "invalid_limit"),
        ({"max_stake_u": "5"}, "x", "invalid_limit"),
        ({"max_stake_u": 5_000_000}, "  ", "reason_required"),
    ],
)
def test_bad_limit_changes_are_refused_and_change_nothing(db, changes, reason, code):
    with pytest.raises(Exception) as refused:
        risk_limits_set(changes=changes, reason=reason)
    assert refused.value.code == code
    assert not AuditEvent.objects.filter(action="risk.limits.change").exists()


def test_auditor_and_finance_cannot_change_limits(db):
    for role in ("auditor", "finance"):
        with pytest.raises(Exception) as refused:
            risk_limits_set(changes={"max_stake_u": 5_000_000}, reason="x", acting_user=role_user(role))
        assert refused.value.code == "permission_denied"


def test_a_per_user_override_raises_or_lowers_until_its_end(open_round):
    maker, capped = _bettor(), _bettor()
    risk_limits_set(changes={"max_stake_u": 5_000_000}, reason="house")
    ends = timezone.now() + timedelta(days=7)
    user_limit_set(user=maker, max_stake_u=50_000_000, ends_at=ends, reason="market maker")
    user_limit_set(user=capped, max_stake_u=0, ends_at=ends, reason="asked for a zero limit")
    bet_place(user=maker, side="UP", stake_u=20_000_000)
    with pytest.raises(Exception) as refused:
        bet_place(user=capped, side="UP", stake_u=1_000_000)
    assert refused.value.code == "stake_too_large"
    assert refused.value.extra["remaining_u"] == 0
    assert "personal" in refused.value.detail
    # after the end date the house limit is back
    import time_machine

    with time_machine.travel(ends + timedelta(seconds=1), tick=False):
        round_create("20250909")
        from risk.selectors import limits_snapshot_forget

        limits_snapshot_forget()
        with pytest.raises(Exception) as again:
            bet_place(user=maker, side="UP", stake_u=20_000_000, round_code="20250909")
        assert again.value.code == "stake_too_large"
        bet_place(user=capped, side="UP", stake_u=1_000_000, round_code="20250909")


# --- self-exclusion --------------------------------------------------------------------------


def test_a_self_excluded_bettor_is_refused_and_nothing_is_written(open_round, api, new_key):
    bettor = _bettor(100_000_000)
    client = api(bettor)
    response = client.post("/api/v1/me/self-exclusion", {"days": 30}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["excluded"] is True
    body = _refused(api, bettor, {"side": "UP", "stake_u": 1_000_000}, new_key(), status=403, code="self_excluded")
    assert body["remaining_u"] == 0 and "until" in body
    assert user_balance_u(user_id=bettor.pk) == 100_000_000
    # it cannot be shortened: a shorter request answers the exclusion in force, unchanged
    shorter = client.post("/api/v1/me/self-exclusion", {"days": 1}, format="json")
    assert shorter.status_code == 200
    assert shorter.json()["ends_at"] == response.json()["ends_at"]
    assert SelfExclusion.objects.count() == 1
    # and it can be extended
    assert client.post("/api/v1/me/self-exclusion", {"days": 60}, format="json").status_code == 201
    assert client.get("/api/v1/me/self-exclusion").json()["excluded"] is True
    assert AuditEvent.objects.filter(action="risk.self_exclusion").count() == 2
    assert_ledger_invariants()


def test_withdrawals_still_work_while_excluded(db, api):
    bettor = _bettor(100_000_000)
    self_exclusion_create(user=bettor, days=30)
    response = api(bettor).post(
        "/api/v1/withdrawals",
        {"amount_u": 5_000_000, "destination": "0x" + "ab" * 20},
        format="json",
        headers={"Idempotency-Key": "w-1"},
    )
    assert response.status_code == 201, response.json()
    assert user_balance_u(user_id=bettor.pk) == 95_000_000


@pytest.mark.parametrize("days", [0, -1, 100_000, "7", 1.5, None])
def test_bad_self_exclusion_periods_are_refused(db, api, days):
    bettor = _bettor()
    response = api(bettor).post("/api/v1/me/self-exclusion", {"days": days}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid_period", "invalid")
    assert SelfExclusion.objects.count() == 0


def test_staff_excluding_someone_else_needs_the_permission_and_a_reason(db):
    bettor = _bettor()
    with pytest.raises(Exception) as refused:
        self_exclusion_create(user=bettor, days=30, acting_user=role_user("auditor"), reason="asked by phone")
    assert refused.value.code == "permission_denied"
    with pytest.raises(Exception) as no_reason:
        self_exclusion_create(user=bettor, days=30, acting_user=role_user("operator"))
    assert no_reason.value.code == "reason_required"
    _, created = self_exclusion_create(user=bettor, days=30, acting_user=role_user("operator"), reason="asked by phone")
    assert created


def test_another_process_change_reaches_this_one_through_the_version_key_or_the_max_age(db, settings):
    """Another process's change: its commit sets a new version in the shared cache; this process's
    snapshot (loaded before) is reloaded on the next read. Where the cache is not shared, the max age."""
    from django.core.cache import cache

    from risk.models import RiskLimits
    from risk.selectors import VERSION_KEY, limits_snapshot

    assert limits_snapshot().house.max_stake_u == 10_000_000_000
    # the other process wrote the row (its snapshot, not ours, was forgotten) ...
    RiskLimits.objects.create(pk=1, min_stake_u=100_000, max_stake_u=3_000_000, side_ratio_floor_u=0)
    assert limits_snapshot().house.max_stake_u == 10_000_000_000  # ... we still serve our copy (no query)
    cache.set(VERSION_KEY, "from-another-process", None)  # ... and published its version on commit
    assert limits_snapshot().house.max_stake_u == 3_000_000
    # no shared cache: the copy is reloaded once it is older than the max age
    RiskLimits.objects.filter(pk=1).update(max_stake_u=4_000_000)
    settings.RISK_LIMITS_MAX_AGE_SECONDS = 0
    assert limits_snapshot().house.max_stake_u == 4_000_000
