"""`simulate` plays whole days through the real services: the ledger passes, the table matches it,
one seed prints one table, only synthetic bettors are touched, and production settings are refused."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from betting.models import Bet
from ledger.selectors import HOUSE_ACCOUNT, account_balance_u, user_balance_u
from risk.selectors import limits_snapshot_forget
from rounds.models import Round, RoundSettlement
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = pytest.mark.money

ARGS = ["--days", "3", "--bettors", "20", "--seed", "7", "--start", "20251103"]


def _simulate(*args: str) -> str:
    out = StringIO()
    call_command("simulate", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _table(output: str) -> str:
    return output.split("Checked ")[0]  # the day table and the ledger line, before ledger_audit's counts


def test_three_days_end_with_the_ledger_passing_and_the_table_matching_it(db):
    # given a real bettor with money and a bet history, who must not be touched
    real = UserFactory(email="real@example.com")
    fund(real, 50_000_000)
    house_before = account_balance_u(code=HOUSE_ACCOUNT)
    # when
    output = _simulate(*ARGS)
    # then every day was played and settled AUTO from a synthetic close
    codes = ["20251103", "20251104", "20251105"]
    assert list(Round.objects.filter(code__in=codes).values_list("status", flat=True)) == ["SETTLED"] * 3
    settlements = RoundSettlement.objects.filter(round__code__in=codes)
    assert {s.requested_result for s in settlements} == {"AUTO"}
    assert {r.close_source for r in Round.objects.filter(code__in=codes)} == {"synthetic"}
    # the table's totals are the ledger's: house P&L = Σ fees + dust, volume = Σ stakes into the pools
    fees_u = sum(s.fee_u + s.dust_u for s in settlements)
    assert account_balance_u(code=HOUSE_ACCOUNT) - house_before == fees_u
    total = next(line for line in output.splitlines() if line.startswith("total"))
    bets = Bet.objects.filter(round__code__in=codes)
    volume_u = sum(bets.values_list("stake_u", flat=True))
    assert total.split()[1] == str(bets.count())
    assert total.split()[3] == f"{volume_u / 1_000_000:,.2f}"
    assert total.split()[6] == str(fees_u)
    assert f"= Σ fees + dust {fees_u} u: match" in output
    assert "Ledger audit passed." in output
    assert_ledger_invariants()
    # only synthetic bettors bet
    assert not bets.exclude(user__email__endswith="@simulate.invalid").exists()
    assert user_balance_u(user_id=real.pk) == 50_000_000
    assert not Bet.objects.filter(user=real).exists()


def test_the_same_seed_prints_the_same_table(db):
    with transaction.atomic():
        first = _table(_simulate(*ARGS))
        transaction.set_rollback(True)  # back to the empty database
    limits_snapshot_forget()
    second = _table(_simulate(*ARGS))
    assert first == second
    assert "total" in first
    other = _simulate("--days", "1", "--bettors", "20", "--seed", "8", "--start", "20251106")
    assert "20251106" in other


def test_a_day_whose_round_exists_is_skipped_and_changes_nothing(db):
    _simulate("--days", "1", "--bettors", "5", "--seed", "1", "--start", "20251103")
    bets = Bet.objects.count()
    again = _simulate("--days", "1", "--bettors", "5", "--seed", "1", "--start", "20251103")
    assert "20251103  round exists: skipped" in again
    assert Bet.objects.count() == bets


def test_production_settings_are_refused_without_i_know(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.production")
    with pytest.raises(CommandError) as refused:
        _simulate(*ARGS)
    assert "[production_refused]" in str(refused.value)
    assert not Round.objects.exists()


def test_a_day_not_yet_closed_needs_time_travel(db):
    with pytest.raises(CommandError) as refused:
        _simulate("--days", "1", "--bettors", "5", "--start", "20991231")
    assert "[day_not_past]" in str(refused.value) or "[no_trading_day]" in str(refused.value)
    assert not Round.objects.exists()


@pytest.mark.parametrize(
    "args",
    [["--days", "0"], ["--days", "-3"], ["--bettors", "99999999"], ["--start", "2025-13-45"], ["--seed", "x"]],
)
def test_bad_options_are_a_sentence(db, args):
    with pytest.raises(CommandError):
        _simulate(*args)
    assert not Round.objects.exists()
