"""Found by the stateful model: money flowing INTO a house that is below zero was refused.

The house may go negative through a goodwill credit (finance, with a reason). After that, a
manual debit (money back to the house) or a settlement fee (money to the house) raises its
balance; the overdraft rule must only refuse movements that take money OUT of an account.
"""

import uuid

import pytest

from betting.services import bet_place
from ledger.models import Account
from ledger.selectors import account_balance_u, user_balance_u
from ledger.services import ledger_manual_adjust
from rounds.services import round_lock, round_open, round_settle
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _adjust(user, amount_u: int, direction: str):
    return ledger_manual_adjust(
        user=user,
        amount_u=amount_u,
        direction=direction,
        reason="goodwill" if direction == "credit" else "correction",
        acting_user=None,
        source="cli",
        idempotency_key=f"adjust:{uuid.uuid4()}",
    )


def test_manual_debit_while_the_house_is_negative_is_accepted():
    # given: a goodwill credit of 2 000 000 took the house to -2 000 000
    alice = UserFactory()
    _adjust(alice, 2_000_000, "credit")
    assert account_balance_u(code=Account.HOUSE) == -2_000_000
    # when: finance takes 500 000 back
    _adjust(alice, 500_000, "debit")
    # then
    assert account_balance_u(code=Account.HOUSE) == -1_500_000
    assert user_balance_u(user_id=alice.pk) == 1_500_000
    assert_ledger_invariants()


def test_settlement_fee_into_a_negative_house_settles():
    # given: the house at -2 000 000, and a round with a 20 000 fee
    _adjust(UserFactory(), 2_000_000, "credit")
    round_open(code="20261223", force=True)
    up, down = UserFactory(), UserFactory()
    fund(up, 5_000_000)
    fund(down, 5_000_000)
    bet_place(user=up, side="UP", stake_u=2_000_000)
    bet_place(user=down, side="DOWN", stake_u=2_000_000)
    round_lock(code="20261223")
    # when
    settlement = round_settle(code="20261223", result="UP", source="cli")
    # then: fee 1 % of the losing pool goes to the house
    assert settlement.fee_u == 20_000
    assert account_balance_u(code=Account.HOUSE) == -2_000_000 + 20_000
    assert user_balance_u(user_id=up.pk) == 3_000_000 + 3_980_000
    assert_ledger_invariants()
