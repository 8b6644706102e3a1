"""settle_round shows the settlement's phases on stderr for a large round, and nothing for a small one."""

import pytest
from django.core.management import call_command

from betting.services import bet_place
from rounds.management.commands import settle_round
from rounds.services import SETTLE_PHASES, round_lock
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _locked_round_with_two_bets() -> None:
    round_create()
    for side in ("UP", "DOWN"):
        bettor = UserFactory()
        fund(bettor, 10_000_000)
        bet_place(user=bettor, side=side, stake_u=1_000_000)
    round_lock(code="20250908")


def test_a_round_over_the_threshold_shows_every_phase(monkeypatch, capsys):
    _locked_round_with_two_bets()
    monkeypatch.setattr(settle_round, "PROGRESS_FROM_BETS", 1)
    call_command("settle_round", code="20250908", result="UP", reason="test")
    err = capsys.readouterr().err
    assert "settling 2 bets" in err
    assert f"{len(SETTLE_PHASES)}/{len(SETTLE_PHASES)} settlement recorded" in err


def test_a_small_round_shows_no_bar(capsys):
    _locked_round_with_two_bets()
    call_command("settle_round", code="20250908", result="UP", reason="test")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "SETTLED: UP" in captured.out
