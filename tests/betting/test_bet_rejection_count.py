"""bet_place itself counts a refused bet for the circuit breaker, whichever door sent it."""

import pytest
from django.db.models import Sum

from betting.services import bet_place
from ledger.exceptions import InsufficientFunds
from ops.models import EventCount
from rounds.exceptions import RoundNotOpen
from rounds.models import Round
from tests.factories import UserFactory, fund

pytestmark = pytest.mark.money


def _rejected() -> int:
    return EventCount.objects.filter(name="bet_rejected").aggregate(total=Sum("count"))["total"] or 0


@pytest.mark.django_db(transaction=True)  # bet_place's transaction is the outermost, as in production
def test_a_refusal_through_the_service_counts_once_and_survives_the_rollback(open_round):
    # given a bettor with 1 USDC
    bettor = UserFactory()
    fund(bettor, 1_000_000)
    before = _rejected()
    # when the service (no API in between) refuses a 2 USDC stake after its transaction began
    with pytest.raises(InsufficientFunds):
        bet_place(user=bettor, side="UP", stake_u=2_000_000, source="cli")
    # then exactly one rejection is counted, although the bet's transaction rolled back
    assert _rejected() == before + 1
    # and a refusal before any write (the round is locked) counts one more
    Round.objects.filter(pk=open_round.pk).update(status=Round.Status.LOCKED)
    with pytest.raises(RoundNotOpen):
        bet_place(user=bettor, side="UP", stake_u=1_000_000, source="admin")
    assert _rejected() == before + 2


@pytest.mark.django_db(transaction=True)
def test_a_success_and_its_replay_are_not_counted(open_round):
    bettor = UserFactory()
    fund(bettor, 5_000_000)
    before = _rejected()
    _, created = bet_place(user=bettor, side="UP", stake_u=1_000_000, idempotency_key="once")
    _, replayed = bet_place(user=bettor, side="UP", stake_u=1_000_000, idempotency_key="once")
    assert (created, replayed) == (True, False)
    assert _rejected() == before
