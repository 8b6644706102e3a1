from datetime import date

import pytest
from django.contrib.auth.models import Permission

from approvals.exceptions import FourEyesRequired
from audit.models import AuditEvent
from betting.models import Bet
from common.errors import PermissionDenied
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from rounds.exceptions import (
    InvalidResult,
    InvalidTransition,
    NoOfficialClose,
    RoundAlreadySettled,
    UnknownRound,
)
from rounds.models import Round, RoundSettlement
from rounds.selectors import round_settlement_preview
from rounds.services import round_lock, round_result_request, round_settle
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory
from tests.rounds.conftest import place_bet, set_close

pytestmark = [pytest.mark.django_db, pytest.mark.money]

CASH = 10_000_000_000  # what the `users` fixture funds each bettor with
POOL = "round:20250908:pool"


def _statuses(round_):
    return sorted(Bet.objects.filter(round=round_).values_list("status", "payout_u"))


def test_up_wins_with_rounding_dust_to_the_house(open_round, users):
    # given three UP stakes that do not divide the losing pool evenly
    a, b, c, d = users(4)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "UP", 1_000_000)
    place_bet(open_round, c, "UP", 1_000_001)
    place_bet(open_round, d, "DOWN", 1_000_000)
    round_lock(code=open_round.code)
    house_before = account_balance_u(code="house")

    # when
    settlement = round_settle(code=open_round.code, result="UP")

    # then fee = floor(1 000 000 × 100 / 10 000) = 10 000; each winner gets stake + floor(stake × 990 000 / 3 000 001)
    assert settlement.result == "UP"
    assert settlement.fee_u == 10_000
    assert settlement.dust_u == 2
    assert settlement.paid_out_u == 3_989_999
    assert settlement.winners_count == 3
    assert user_balance_u(user_id=a.pk) == CASH - 1_000_000 + 1_329_999
    assert user_balance_u(user_id=b.pk) == CASH - 1_000_000 + 1_329_999
    assert user_balance_u(user_id=c.pk) == CASH - 1_000_001 + 1_330_001
    assert user_balance_u(user_id=d.pk) == CASH - 1_000_000
    assert account_balance_u(code="house") - house_before == 10_002
    assert account_balance_u(code=POOL) == 0
    assert tvl_get().locked_u == 0
    assert _statuses(open_round) == [("LOST", 0), ("WON", 1_329_999), ("WON", 1_329_999), ("WON", 1_330_001)]
    round_ = Round.objects.get(pk=open_round.pk)
    assert (round_.status, round_.result) == ("SETTLED", "UP")
    assert len(round_.settlement_digest) == 64
    assert_ledger_invariants()


def test_settlement_is_one_balanced_batch_referencing_the_round(open_round, users):
    a, b, c = users(3)
    place_bet(open_round, a, "UP", 2_000_000)
    place_bet(open_round, a, "UP", 3_000_000)  # several bets of one user: one aggregated cash line
    place_bet(open_round, b, "DOWN", 5_000_000)
    place_bet(open_round, c, "DOWN", 1_000_000)
    round_lock(code=open_round.code)

    settlement = round_settle(code=open_round.code, result="UP")

    batch = LedgerBatch.objects.get(pk=settlement.ledger_batch_id)
    assert (batch.ref_type, batch.ref_id, batch.idempotency_key) == ("settlement", "20250908", "settlement:20250908")
    lines = dict(LedgerEntry.objects.filter(batch=batch).values_list("account", "amount_u"))
    # fee = floor(6 000 000 × 0.01) = 60 000; winners share 5 940 000 over 5 000 000
    assert lines == {
        Account.user_cash_code(a.pk): 2_000_000 + 2_376_000 + 3_000_000 + 3_564_000,
        POOL: -11_000_000,
        "house": 60_000,
    }
    assert sum(lines.values()) == 0


def test_lopsided_pool_single_winner_takes_the_losers_pool_minus_fee(open_round, users):
    winner, *losers = users(4)
    place_bet(open_round, winner, "UP", 1_000_000)
    for loser in losers:
        place_bet(open_round, loser, "DOWN", 33_000_000)
    round_lock(code=open_round.code)

    settlement = round_settle(code=open_round.code, result="UP")

    assert (settlement.fee_u, settlement.dust_u, settlement.paid_out_u) == (990_000, 0, 99_010_000)
    assert user_balance_u(user_id=winner.pk) == CASH + 98_010_000
    for loser in losers:
        assert user_balance_u(user_id=loser.pk) == CASH - 33_000_000
    assert_ledger_invariants()


def test_lopsided_pool_favourites_win_little(open_round, users):
    underdog, *favourites = users(4)
    place_bet(open_round, underdog, "UP", 1_000_000)
    for favourite in favourites:
        place_bet(open_round, favourite, "DOWN", 33_000_000)
    round_lock(code=open_round.code)

    settlement = round_settle(code=open_round.code, result="DOWN")

    # fee 10 000; each favourite: 33 000 000 + floor(33 000 000 × 990 000 / 99 000 000) = 33 330 000
    assert (settlement.fee_u, settlement.dust_u, settlement.paid_out_u) == (10_000, 0, 99_990_000)
    for favourite in favourites:
        assert user_balance_u(user_id=favourite.pk) == CASH + 330_000
    assert user_balance_u(user_id=underdog.pk) == CASH - 1_000_000


def test_void_refunds_every_stake_without_fee(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_234_567)
    place_bet(open_round, b, "DOWN", 7_654_321)
    round_lock(code=open_round.code)
    house_before = account_balance_u(code="house")

    settlement = round_settle(code=open_round.code, result="VOID", reason="oracle failed")

    assert (settlement.result, settlement.fee_u, settlement.dust_u) == ("VOID", 0, 0)
    assert settlement.paid_out_u == 8_888_888
    assert user_balance_u(user_id=a.pk) == CASH
    assert user_balance_u(user_id=b.pk) == CASH
    assert account_balance_u(code="house") == house_before
    assert _statuses(open_round) == [("REFUNDED", 1_234_567), ("REFUNDED", 7_654_321)]
    assert AuditEvent.objects.filter(action="round.void", object_id="20250908", reason="oracle failed").count() == 1
    assert_ledger_invariants()


def test_one_sided_round_is_void(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "UP", 2_000_000)
    round_lock(code=open_round.code)

    settlement = round_settle(code=open_round.code, result="UP")

    assert settlement.result == "VOID"
    assert user_balance_u(user_id=a.pk) == CASH
    assert user_balance_u(user_id=b.pk) == CASH
    assert Round.objects.get(pk=open_round.pk).settle_reason == "one side has no stake"


def test_round_without_bets_settles_with_no_money_moved(locked_round):
    settlement = round_settle(code=locked_round.code, result="UP")
    assert (settlement.result, settlement.ledger_batch_id, settlement.bets_count) == ("VOID", None, 0)
    assert Round.objects.get(pk=locked_round.pk).status == "SETTLED"


def test_auto_uses_the_official_close_and_previous_trading_day(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 1_000_000)
    round_lock(code=open_round.code)
    set_close("NDX", date(2025, 9, 5), "23652.44")  # Friday before Monday 2025-09-08
    set_close("NDX", date(2025, 9, 8), "23762.10")

    settlement = round_settle(code=open_round.code, result="AUTO")

    round_ = Round.objects.get(pk=open_round.pk)
    assert (settlement.result, settlement.requested_result) == ("UP", "AUTO")
    assert str(round_.close_price) == "23762.100000"
    assert str(round_.reference_price) == "23652.440000"
    assert round_.close_source == round_.reference_source == "manual"
    assert user_balance_u(user_id=a.pk) == CASH + 990_000


def test_auto_down(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 1_000_000)
    round_lock(code=open_round.code)
    set_close("NDX", date(2025, 9, 5), "100")
    set_close("NDX", date(2025, 9, 8), "99.999999")

    assert round_settle(code=open_round.code, result="AUTO").result == "DOWN"
    assert user_balance_u(user_id=b.pk) == CASH + 990_000


def test_auto_tie_is_void(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 3_000_000)
    round_lock(code=open_round.code)
    set_close("NDX", date(2025, 9, 5), "100.5")
    set_close("NDX", date(2025, 9, 8), "100.500000")

    settlement = round_settle(code=open_round.code, result="AUTO")

    assert (settlement.result, settlement.fee_u) == ("VOID", 0)
    assert user_balance_u(user_id=a.pk) == CASH
    assert user_balance_u(user_id=b.pk) == CASH


def test_auto_without_official_close_changes_nothing(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 1_000_000)
    round_lock(code=open_round.code)
    set_close("NDX", date(2025, 9, 5), "100")  # the reference only
    entries, audits = LedgerEntry.objects.count(), AuditEvent.objects.count()

    with pytest.raises(NoOfficialClose) as raised:
        round_settle(code=open_round.code, result="AUTO")

    assert "2025-09-08" in raised.value.detail
    assert Round.objects.get(pk=open_round.pk).status == "LOCKED"
    assert not RoundSettlement.objects.exists()
    assert (LedgerEntry.objects.count(), AuditEvent.objects.count()) == (entries, audits)
    assert set(Bet.objects.values_list("status", flat=True)) == {"PLACED"}


def test_settle_twice_pays_once_and_the_second_writes_nothing(open_round, users):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 1_000_000)
    round_lock(code=open_round.code)
    round_settle(code=open_round.code, result="UP")
    entries, audits, balance = LedgerEntry.objects.count(), AuditEvent.objects.count(), user_balance_u(user_id=a.pk)

    for result in ("UP", "DOWN", "VOID", "AUTO"):
        with pytest.raises(RoundAlreadySettled):
            round_settle(code=open_round.code, result=result)

    assert (LedgerEntry.objects.count(), AuditEvent.objects.count()) == (entries, audits)
    assert user_balance_u(user_id=a.pk) == balance == CASH + 990_000
    assert RoundSettlement.objects.count() == 1


def test_crash_mid_settlement_leaves_round_locked_and_nothing_paid(open_round, users, monkeypatch):
    a, b = users(2)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "DOWN", 1_000_000)
    round_lock(code=open_round.code)

    def crash(**kwargs):
        raise RuntimeError("power cut after the ledger batch")

    monkeypatch.setattr("rounds.services.settlement_digest_compute", crash)
    with pytest.raises(RuntimeError):
        round_settle(code=open_round.code, result="UP")

    assert Round.objects.get(pk=open_round.pk).status == "LOCKED"
    assert not RoundSettlement.objects.exists()
    assert not LedgerBatch.objects.filter(ref_type="settlement").exists()
    assert set(Bet.objects.values_list("status", "payout_u")) == {("PLACED", 0)}
    assert account_balance_u(code=POOL) == 2_000_000
    monkeypatch.undo()
    assert round_settle(code=open_round.code, result="UP").paid_out_u == 1_990_000


def test_transitions_are_refused_out_of_order(open_round):
    with pytest.raises(InvalidTransition) as raised:
        round_settle(code=open_round.code, result="UP")
    assert raised.value.code == "round_not_locked"
    round_lock(code=open_round.code)
    with pytest.raises(InvalidTransition) as raised:
        round_lock(code=open_round.code)
    assert raised.value.code == "round_not_open"
    round_settle(code=open_round.code, result="VOID")
    with pytest.raises(InvalidTransition) as raised:
        round_lock(code=open_round.code)
    assert raised.value.code == "round_not_open"


def test_bad_input_is_refused(locked_round):
    with pytest.raises(InvalidResult):
        round_settle(code=locked_round.code, result="SIDEWAYS")
    with pytest.raises(UnknownRound):
        round_settle(code="20250909", result="UP")
    with pytest.raises(UnknownRound):
        round_lock(code="20250909")


def test_lock_and_settle_are_audited(open_round):
    round_lock(code=open_round.code, reason="emergency", source="cli")
    round_settle(code=open_round.code, result="UP", source="cli")
    actions = list(AuditEvent.objects.filter(object_id="20250908").order_by("id").values_list("action", "source"))
    assert actions == [("round.open", "system"), ("round.lock", "cli"), ("round.void", "cli")]


def test_staff_need_the_permissions(open_round):
    staff = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        round_lock(code=open_round.code, acting_user=staff, reason="x", source="admin")
    staff.user_permissions.add(Permission.objects.get(codename="lock_round"))
    staff = type(staff).objects.get(pk=staff.pk)  # fresh permission cache
    round_lock(code=open_round.code, acting_user=staff, reason="x", source="admin")
    with pytest.raises(PermissionDenied):
        round_settle(code=open_round.code, result="UP", acting_user=staff, reason="x", source="admin")
    staff.user_permissions.add(Permission.objects.get(codename="settle_round"))
    staff = type(staff).objects.get(pk=staff.pk)
    with pytest.raises(PermissionDenied):
        round_settle(code=open_round.code, result="VOID", acting_user=staff, reason="x", source="admin")
    with pytest.raises(FourEyesRequired):  # a result by hand is a request another operator approves
        round_settle(code=open_round.code, result="UP", acting_user=staff, reason="x", source="admin")
    assert round_result_request(code=open_round.code, result="UP", acting_user=staff, reason="x", source="admin")[1]


def test_preview_matches_the_settlement(open_round, users):
    a, b, c, d = users(4)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "UP", 1_000_000)
    place_bet(open_round, c, "UP", 1_000_001)
    place_bet(open_round, d, "DOWN", 1_000_000)
    round_lock(code=open_round.code)

    preview = round_settlement_preview(code=open_round.code, result="UP")

    assert (preview.plan.result, preview.fee_u, preview.dust_u) == ("UP", 10_000, 2)
    assert (preview.winners_count, preview.paid_out_u) == (3, 3_989_999)
    assert not RoundSettlement.objects.exists()
    settlement = round_settle(code=open_round.code, result="UP")
    assert (settlement.paid_out_u, settlement.dust_u, settlement.winners_count) == (3_989_999, 2, 3)


def test_amounts_beyond_bigint_products_are_exact(open_round, users):
    # stake × (losing − fee) = 10^12 × 9.9·10^11 ≈ 10^24: far past 2^63, still exact.
    a, b, c = users(3, amount_u=2_000_000_000_000)
    place_bet(open_round, a, "UP", 1_000_000_000_000)
    place_bet(open_round, b, "UP", 333_333_333_333)
    place_bet(open_round, c, "DOWN", 1_000_000_000_000)
    round_lock(code=open_round.code)

    settlement = round_settle(code=open_round.code, result="UP")

    winning, distributable = 1_333_333_333_333, 990_000_000_000
    assert settlement.fee_u == 10_000_000_000
    expected_a = 1_000_000_000_000 + 1_000_000_000_000 * distributable // winning
    expected_b = 333_333_333_333 + 333_333_333_333 * distributable // winning
    assert expected_a == 1_742_500_000_000
    assert user_balance_u(user_id=a.pk) == 1_000_000_000_000 + expected_a
    assert user_balance_u(user_id=b.pk) == 2_000_000_000_000 - 333_333_333_333 + expected_b
    assert settlement.dust_u == 2_333_333_333_333 - 10_000_000_000 - expected_a - expected_b
    assert_ledger_invariants()
