"""settle_round shows the settlement's phases on stderr for a large round, and only its timed step for a small one."""

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
    call_command("settle_round", code="20250908", result="VOID", reason="test")
    err = capsys.readouterr().err
    assert "settling 2 bets" in err
    assert f"{len(SETTLE_PHASES)}/{len(SETTLE_PHASES)} settlement recorded" in err


def test_a_small_round_shows_no_bar(capsys):
    _locked_round_with_two_bets()
    call_command("settle_round", code="20250908", result="VOID", reason="test")
    captured = capsys.readouterr()
    assert "settling" not in captured.err  # only the timed step's two lines, no bar
    assert captured.err.startswith("Settling round 20250908 (VOID)…\n")
    assert "SETTLED: VOID" in captured.out
