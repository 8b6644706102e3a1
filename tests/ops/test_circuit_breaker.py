"""Each breaker rule trips the breaker with its reason, betting halts, and a staff reset (with a reason) closes it."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from ledger.models import Account
from ledger.services import ledger_manual_adjust
from ops.counters import event_count_add
from ops.models import OpsSwitch
from ops.selectors import betting_halt
from ops.services import circuit_breaker_evaluate, circuit_breaker_reset
from rounds.models import Round
from tests.factories import UserFactory, role_user
from tests.ops.conftest import make_bet, make_round
from withdrawals.models import Withdrawal


def break_ledger():
    Account.objects.filter(code=Account.HOUSE).update(balance_u=F("balance_u") + 7)
    return lambda: Account.objects.filter(code=Account.HOUSE).update(balance_u=F("balance_u") - 7)


def overdue_settlement():
    now = timezone.now()
    round_ = make_round(
        "20250905",
        status=Round.Status.LOCKED,
        lock_at=now - dt.timedelta(hours=5),
        settle_at=now - dt.timedelta(hours=4),
    )
    return lambda: Round.objects.filter(pk=round_.pk).update(status=Round.Status.SETTLED, result="VOID")


def auto_found_no_close():
    now = timezone.now()
    round_ = make_round("20250906", status=Round.Status.LOCKED, settle_at=now - dt.timedelta(minutes=1))
    Round.objects.filter(pk=round_.pk).update(overdue_since=now)
    return lambda: Round.objects.filter(pk=round_.pk).update(overdue_since=None)


def house_loss(settings):
    settings.OPS_BREAKER_HOUSE_LOSS_U = 5_000_000
    finance = UserFactory(is_staff=True)
    finance.is_superuser = True
    finance.save()
    ledger_manual_adjust(
        user=UserFactory(),
        amount_u=6_000_000,
        direction="credit",
        reason="goodwill",
        acting_user=finance,
        source="cli",
        idempotency_key="test-goodwill",
    )

    def fix():
        settings.OPS_BREAKER_HOUSE_LOSS_U = 6_000_000  # exactly the loss: not beyond the threshold

    return fix


def withdrawal_failures(settings):
    settings.OPS_BREAKER_WITHDRAWAL_MIN_COUNT = 4
    settings.OPS_BREAKER_WITHDRAWAL_FAILURE_RATE = 0.5
    user = UserFactory()
    for status in ["FAILED", "FAILED", "COMPLETED", "COMPLETED"]:
        Withdrawal.objects.create(user=user, amount_u=1_000_000, status=status)
    return lambda: Withdrawal.objects.filter(status="FAILED").update(status="COMPLETED")


def rejection_spike(settings):
    settings.OPS_BREAKER_REJECTION_MIN_COUNT = 10
    settings.OPS_BREAKER_REJECTION_RATE = 0.5
    round_ = make_round("20250908")
    for _ in range(5):
        make_bet(round_)
    event_count_add(name="bet_rejected", count=10)  # 10 of 15 = 67 %
    return lambda: [make_bet(round_) for _ in range(6)]  # 10 of 21 = 48 %


def unusual_betting(settings):
    settings.OPS_BREAKER_STAKE_SHARE = 0.8
    settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = 10_000_000
    whale = UserFactory()
    round_ = make_round("20250908", up_u=9_000_000, down_u=1_000_000)
    make_bet(round_, whale, stake_u=9_000_000)  # 100 % of the UP side of a 10 USDC pool
    make_bet(round_, side="DOWN", stake_u=500_000)  # two DOWN bettors of 50 % each
    make_bet(round_, side="DOWN", stake_u=500_000)

    def fix():
        make_bet(round_, side="UP", stake_u=3_000_000)
        Round.objects.filter(pk=round_.pk).update(up_pool_u=12_000_000)  # whale now 75 % of UP

    return fix


CASES = {
    "ledger_audit": lambda settings: break_ledger(),
    "settlement_overdue": lambda settings: overdue_settlement(),
    "settlement_overdue ": lambda settings: auto_found_no_close(),
    "house_loss": house_loss,
    "withdrawal_failures": withdrawal_failures,
    "bet_rejections": rejection_spike,
    "unusual_betting": unusual_betting,
}


@pytest.mark.django_db
@pytest.mark.parametrize("rule", list(CASES))
def test_rule_trips_the_breaker_and_staff_resets_it(rule, settings):
    # given a healthy system: nothing trips
    assert circuit_breaker_evaluate() is None

    # when the rule's condition appears
    fix = CASES[rule](settings)
    trip = circuit_breaker_evaluate()

    # then the breaker opens with that rule and betting halts with its reason
    assert trip is not None and trip.rule == rule.strip()
    halt = betting_halt()
    assert halt.code == "circuit_breaker"
    assert halt.reason.startswith(f"{rule.strip()}: ")
    opened = AuditEvent.objects.get(action="ops.circuit_breaker.open")
    assert (opened.source, opened.object_id) == ("beat", "circuit_breaker")
    # and a second evaluation while open changes nothing
    assert circuit_breaker_evaluate() is None
    assert AuditEvent.objects.filter(action="ops.circuit_breaker.open").count() == 1

    # when the condition is fixed and staff reset the breaker with a reason
    fix()
    call_command("circuit_breaker", "reset", "--reason", "investigated")

    # then betting resumes, the reset is audited, and the rule no longer trips
    assert betting_halt() is None
    assert AuditEvent.objects.filter(action="ops.circuit_breaker.reset", reason="investigated").count() == 1
    assert circuit_breaker_evaluate() is None


@pytest.mark.django_db
def test_reset_needs_a_reason():
    OpsSwitch.objects.filter(name="circuit_breaker").update(active=True, reason="x")
    with pytest.raises(CommandError, match="reason"):
        call_command("circuit_breaker", "reset")
    assert betting_halt().code == "circuit_breaker"


@pytest.mark.django_db
def test_reset_api_needs_an_operator_or_token(api, bettor, client):
    OpsSwitch.objects.filter(name="circuit_breaker").update(active=True, reason="x")
    assert api(bettor).post("/api/v1/ops/circuit-breaker", {"reason": "r"}, format="json").status_code == 403
    assert client.post("/api/v1/ops/circuit-breaker", {"reason": "r"}).status_code == 401
    staff = role_user("operator")
    asked = api(staff).post("/api/v1/ops/circuit-breaker", {"reason": "r"}, format="json")
    assert asked.status_code == 202 and betting_halt() is not None  # four eyes: a request
    mine = api(staff).post("/api/v1/ops/circuit-breaker", {"approve": asked.json()["approval_request"]}, format="json")
    assert (mine.status_code, mine.json()["code"]) == (403, "own_request")
    staff = role_user("operator")
    approved = api(staff).post(
        "/api/v1/ops/circuit-breaker", {"approve": asked.json()["approval_request"]}, format="json"
    )
    assert approved.status_code == 200
    assert betting_halt() is None
    assert AuditEvent.objects.get(action="ops.circuit_breaker.reset").actor == staff


@pytest.mark.django_db
def test_reset_service_requires_reason():
    from common.errors import ReasonRequired

    with pytest.raises(ReasonRequired):
        circuit_breaker_reset(reason="  ", source="api")
