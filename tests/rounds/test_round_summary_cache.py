"""GET /rounds/current from the shared cache: served without the database until a door changes the round."""

import pytest
from rest_framework.test import APIClient

from betting.services import bet_place
from rounds.models import Round
from rounds.services import round_lock, round_settle
from tests.betting.conftest import round_create
from tests.factories import UserFactory, fund

# transaction=True: the invalidation runs when the change commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def summary_cache(settings):
    settings.ROUND_SUMMARY_CACHE = True


def _current() -> dict:
    response = APIClient().get("/rounds/current")
    assert response.status_code in (200, 404), response.content
    return response.json()


def test_the_cached_summary_follows_every_bet_lock_and_settlement(summary_cache):
    round_create()
    assert (_current()["up_pool_u"], _current()["down_pool_u"]) == (0, 0)
    # A write that bypasses the doors is not seen: the summary comes from the cache.
    Round.objects.filter(code="20250908").update(down_pool_u=7)
    assert _current()["down_pool_u"] == 0

    bettor = UserFactory()
    fund(bettor, 50_000_000)
    bet_place(user=bettor, side="UP", stake_u=2_000_000, idempotency_key="k1")
    after_bet = _current()
    assert (after_bet["status"], after_bet["up_pool_u"], after_bet["down_pool_u"]) == ("OPEN", 2_000_000, 7)

    Round.objects.filter(code="20250908").update(down_pool_u=0)  # back to what the bets say, for the settlement
    round_lock(code="20250908")
    assert (_current()["status"], _current()["down_pool_u"]) == ("LOCKED", 0)

    round_settle(code="20250908", result="VOID", reason="test")
    assert (_current()["status"], _current()["result"]) == ("SETTLED", "VOID")  # the last settled round


def test_without_the_setting_every_read_goes_to_the_database():
    round_create()
    assert _current()["down_pool_u"] == 0
    Round.objects.filter(code="20250908").update(down_pool_u=7)
    assert _current()["down_pool_u"] == 7


def test_a_summary_of_another_generation_is_not_used(summary_cache):
    """The summary is stored with the generation it was read in: once the generation moves (a change
    committed), the stored one is not served even though it is still in the cache."""
    from rounds.selectors import round_summary_changed

    round_create()
    assert _current()["down_pool_u"] == 0
    Round.objects.filter(code="20250908").update(down_pool_u=7)
    assert _current()["down_pool_u"] == 0  # cached
    round_summary_changed()
    assert _current()["down_pool_u"] == 7
