"""The pool cap and a bettor's round total hold under races (PostgreSQL, real threads): the round row
lock bet_place takes before the one limit check serialises the bets of a round."""

import pytest

from betting.models import Bet
from betting.services import bet_place
from common.errors import ApplicationError
from ledger.models import Account
from ledger.selectors import account_balance_u
from risk.services import risk_limits_set
from rounds.models import Round
from tests.betting.conftest import round_create
from tests.betting.test_bet_concurrency import _concurrently
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.postgres, pytest.mark.money, pytest.mark.django_db(transaction=True)]


def test_forty_racing_bets_never_pass_the_pool_cap():
    round_create("20250908")
    risk_limits_set(changes={"max_round_pool_u": 50_000_000}, reason="cap at 50 USDC")
    users = [UserFactory() for _ in range(40)]
    for user in users:
        fund(user, 10_000_000)
    results = _concurrently([lambda user=user: bet_place(user=user, side="UP", stake_u=2_000_000) for user in users])
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(refused) == 15 and {r.code for r in refused} == {"round_pool_cap_reached"}
    assert Bet.objects.count() == 25
    assert Round.objects.get(code="20250908").up_pool_u == 50_000_000
    assert account_balance_u(code=Account.round_pool_code("20250908")) == 50_000_000
    assert_ledger_invariants()


def test_one_bettor_racing_themself_never_passes_their_round_total():
    round_create("20250908")
    risk_limits_set(changes={"max_user_round_u": 7_000_000}, reason="tight")
    user = UserFactory()
    fund(user, 100_000_000)
    results = _concurrently([lambda: bet_place(user=user, side="DOWN", stake_u=1_000_000) for _ in range(20)])
    assert sum(1 for r in results if isinstance(r, ApplicationError)) == 13
    assert Bet.objects.filter(user=user).count() == 7
    assert_ledger_invariants()
