import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from betting.services import bet_place
from ledger.models import Account
from marketdata.selectors import market_timezone
from rounds.models import Round
from rounds.services import round_lock, round_open, round_settle
from tests.factories import UserFactory, fund
from withdrawals.services import withdrawal_request


@pytest.fixture
def settled_day(db):
    """Two bettors, 30 USDC UP vs 10 USDC DOWN, settled UP: fee 0.1 USDC to the house."""
    code = (timezone.now() + dt.timedelta(days=7)).strftime("%Y%m%d")
    round_open(code=code, force=True)
    up, down = UserFactory(), UserFactory()
    fund(up, 100_000_000)
    fund(down, 100_000_000)
    bet_place(user=up, side="UP", stake_u=30_000_000, round_code=code)
    bet_place(user=down, side="DOWN", stake_u=10_000_000, round_code=code)
    withdrawal_request(user=down, amount_u=5_000_000, source="api")
    round_lock(code=code, reason="test", source="cli")
    round_settle(code=code, result="UP", reason="test", source="cli")
    return code


@pytest.mark.money
@pytest.mark.django_db
def test_daily_report_numbers(settled_day, capsys):
    call_command("daily_report")
    out = capsys.readouterr().out
    assert "Total Users: 2 (2 new)" in out
    assert "Active Bettors: 2" in out
    assert "Daily Volume: 40.00 USDC (40,000,000 u)" in out
    assert "Fees: 0.10 USDC (100,000 u)" in out
    assert "House P&L: 0.10 USDC (100,000 u)" in out
    assert "Rounds Settled: 1" in out
    assert "Deposits: 2 totalling 200.00 USDC (200,000,000 u)" in out
    assert "Withdrawals Requested: 1 totalling 5.00 USDC (5,000,000 u)" in out
    assert "Locked: 0.00 USDC (0 u)" in out
    assert "Total Cash: 194.90 USDC (194,900,000 u)" in out  # 200 deposited - 5 pending - 0.1 fee
    assert "Pending Withdrawals: 5.00 USDC (5,000,000 u)" in out


@pytest.mark.money
@pytest.mark.django_db
def test_pnl_table_and_csv(settled_day, capsys, tmp_path):
    today = timezone.localdate(timezone=market_timezone())  # the reports count New York days
    start = today - dt.timedelta(days=1)
    call_command("pnl", "--from", start.isoformat(), "--to", today.isoformat(), "--csv")
    assert capsys.readouterr().out.splitlines() == [
        "date,fees_u,adjustments_u,house_pnl_u,volume_u",
        f"{start.isoformat()},0,0,0,0",
        f"{today.isoformat()},100000,0,100000,40000000",
    ]
    target = tmp_path / "pnl.csv"
    call_command("pnl", "--from", today.isoformat(), "--to", today.isoformat(), "--csv", str(target))
    assert target.read_text().splitlines()[1] == f"{today.isoformat()},100000,0,100000,40000000"
    call_command("pnl", "--from", today.isoformat(), "--to", today.isoformat())
    assert "Total house P&L: 0.10 USDC (100,000 u)" in capsys.readouterr().out


def test_pnl_refuses_bad_dates():
    with pytest.raises(CommandError, match="--from"):
        call_command("pnl", "--from", "2025-13-01")
    with pytest.raises(CommandError, match="after"):
        call_command("pnl", "--from", "2025-09-09", "--to", "2025-09-08")


@pytest.mark.money
@pytest.mark.django_db
def test_reconcile_passes_on_a_consistent_system(settled_day, capsys):
    code = (timezone.now() + dt.timedelta(days=8)).strftime("%Y%m%d")
    round_open(code=code, force=True)
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    bet_place(user=bettor, side="UP", stake_u=2_000_000, round_code=code)  # an open pool too
    call_command("reconcile")
    assert "Reconciled" in capsys.readouterr().out


@pytest.mark.money
@pytest.mark.django_db
def test_reconcile_fails_on_a_pool_mismatch(settled_day, capsys):
    code = (timezone.now() + dt.timedelta(days=8)).strftime("%Y%m%d")
    round_open(code=code, force=True)
    Round.objects.filter(code=code).update(up_pool_u=F("up_pool_u") + 1)
    with pytest.raises(CommandError, match="Reconciliation FAILED"):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert f"round {code} (OPEN): pool account 0 u, expected 1 u" in out


@pytest.mark.money
@pytest.mark.django_db
def test_reconcile_fails_on_a_cached_balance_mismatch(settled_day, capsys):
    Account.objects.filter(code=Account.WITHDRAWALS_PENDING).update(balance_u=F("balance_u") + 3)
    with pytest.raises(CommandError):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert "withdrawals:pending: cached 5000003 u, entries 5000000 u" in out
    assert "withdrawals:pending 5000003 u, queued/processing 5000000 u" in out


@pytest.mark.money
@pytest.mark.django_db
def test_a_report_day_is_a_new_york_day_in_every_door(time_machine):
    """23:30 New York on 2 Dec is 04:30 UTC on 3 Dec: the bet belongs to 2 Dec's report, whatever the door's zone."""
    from ops.reports import daily_report_get

    time_machine.move_to(dt.datetime(2026, 12, 2, 14, 0, tzinfo=dt.UTC), tick=False)
    round_open(code="20261203", force=True)
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    time_machine.move_to(dt.datetime(2026, 12, 3, 4, 30, tzinfo=dt.UTC), tick=False)  # 23:30 EST, 2 Dec
    bet_place(user=bettor, side="UP", stake_u=2_000_000, round_code="20261203")
    assert (daily_report_get(day=dt.date(2026, 12, 2)).bets, daily_report_get(day=dt.date(2026, 12, 3)).bets) == (1, 0)
