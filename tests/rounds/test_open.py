from datetime import UTC, datetime

import pytest

from ledger.models import Account
from rounds.exceptions import InvalidRoundCode, MarketClosed, UnknownRound
from rounds.models import Round
from rounds.selectors import round_current, round_get
from rounds.services import round_open

pytestmark = pytest.mark.django_db


def test_open_sets_lock_and_settle_times_in_new_york_summer():
    round_, _ = round_open(code="20250908")
    assert round_.lock_at == datetime(2025, 9, 8, 19, 59, 59, tzinfo=UTC)  # EDT = UTC-4
    assert round_.settle_at == datetime(2025, 9, 8, 20, 5, tzinfo=UTC)
    assert round_.status == Round.Status.OPEN
    assert Account.objects.get(code="round:20250908:pool").kind == Account.Kind.ROUND_POOL


def test_open_in_winter_uses_eastern_standard_time():
    round_, _ = round_open(code="20250106")
    assert round_.lock_at == datetime(2025, 1, 6, 20, 59, 59, tzinfo=UTC)  # EST = UTC-5
    assert round_.settle_at == datetime(2025, 1, 6, 21, 5, tzinfo=UTC)


def test_open_across_the_dst_switch():
    # 2025-03-07 (Fri) is EST, 2025-03-10 (Mon) is EDT: same local time, one hour apart in UTC.
    before, _ = round_open(code="20250307")
    after, _ = round_open(code="20250310")
    assert before.lock_at.astimezone(UTC).hour == 20
    assert after.lock_at.astimezone(UTC).hour == 19


def test_open_on_an_early_close_day_locks_at_12_59_59():
    round_, _ = round_open(code="20251128")  # day after Thanksgiving
    assert round_.lock_at == datetime(2025, 11, 28, 17, 59, 59, tzinfo=UTC)
    assert round_.settle_at == datetime(2025, 11, 28, 18, 5, tzinfo=UTC)


def test_open_is_idempotent():
    first, _ = round_open(code="20250908")
    second, _ = round_open(code="20250908")
    assert first.pk == second.pk
    assert Round.objects.count() == 1


@pytest.mark.parametrize("code", ["20250906", "20250907", "20251225", "20250704"])
def test_open_refuses_weekends_and_holidays(code):
    with pytest.raises(MarketClosed):
        round_open(code=code)
    assert not Round.objects.exists()


def test_force_opens_on_a_holiday_with_the_regular_close():
    round_, _ = round_open(code="20251225", force=True)
    assert round_.lock_at == datetime(2025, 12, 25, 20, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("code", ["2025098", "abcdefgh", "20251332", "", "2025-09-08"])
def test_malformed_codes_are_refused(code):
    with pytest.raises(InvalidRoundCode):
        round_open(code=code)
    with pytest.raises(InvalidRoundCode):
        round_get(code=code)


def test_round_get_unknown():
    with pytest.raises(UnknownRound):
        round_get(code="20250908")


def test_round_current_prefers_open_then_latest_locked():
    assert round_current() is None
    first, _ = round_open(code="20250908")
    round_open(code="20250909")
    assert round_current().code == first.code
    Round.objects.update(status=Round.Status.LOCKED)
    assert round_current().code == "20250909"
