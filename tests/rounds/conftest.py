"""Helpers for round tests: bets are made directly (exact small stakes, any clock) with the
same money movement bet_place makes (cash -> pool) and the same cached pool counter."""

import uuid
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import F

from betting.models import Bet
from ledger.models import Account
from ledger.services import Line, ledger_post
from marketdata.models import OfficialClose
from rounds.models import Round
from rounds.services import round_lock, round_open
from tests.factories import UserFactory


def place_bet(round_: Round, user, side: str, stake_u: int) -> Bet:
    bet = Bet.objects.create(round=round_, user=user, side=side, stake_u=stake_u)
    ledger_post(
        [Line(Account.user_cash_code(user.pk), -stake_u), Line(Account.round_pool_code(round_.code), stake_u)],
        ref_type="bet",
        ref_id=bet.pk,
        idempotency_key=f"test-bet:{uuid.uuid4()}",
    )
    column = "up_pool_u" if side == "UP" else "down_pool_u"
    Round.objects.filter(pk=round_.pk).update(**{column: F(column) + stake_u})
    return bet


def fund_cash(user, amount_u: int) -> None:
    """A deposit straight through the ledger (independent of the withdrawals app's deposit flow)."""
    while amount_u > 0:
        chunk = min(amount_u, 1_000_000_000_000)  # one movement is capped at MAX_AMOUNT_U
        ledger_post(
            [Line(Account.user_cash_code(user.pk), chunk), Line(Account.EXTERNAL_DEPOSITS, -chunk)],
            ref_type="deposit",
            ref_id=f"test:{uuid.uuid4()}",
            idempotency_key=f"test-deposit:{uuid.uuid4()}",
        )
        amount_u -= chunk


def set_close(symbol: str, day: date, price: str) -> None:
    OfficialClose.objects.update_or_create(symbol=symbol, date=day, defaults={"price": Decimal(price)})


@pytest.fixture
def users(db):
    """users(n) -> n bettors with 10 000 USDC each."""

    def make(n: int, amount_u: int = 10_000_000_000):
        made = [UserFactory() for _ in range(n)]
        for user in made:
            fund_cash(user, amount_u)
        return made

    return make


@pytest.fixture
def open_round(db):
    return round_open(code="20250908")[0]


@pytest.fixture
def locked_round(open_round):
    return round_lock(code=open_round.code)
