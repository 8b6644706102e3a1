from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from common.errors import ReasonRequired
from marketdata.exceptions import InvalidDate, InvalidPrice, InvalidSymbol
from marketdata.oracle import ClosePrice
from marketdata.selectors import (
    market_close_at,
    official_close_get,
    reference_close_get,
    trading_day_get,
    trading_day_previous,
)
from marketdata.services import calendar_override_set, official_close_set
from rounds.exceptions import MarketClosed
from rounds.services import round_open

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("day", "is_open", "close"),
    [
        (date(2025, 9, 8), True, time(16)),  # ordinary Monday
        (date(2025, 9, 6), False, None),  # Saturday
        (date(2025, 12, 25), False, None),  # Christmas
        (date(2025, 4, 18), False, None),  # Good Friday (an exchange holiday, not a federal one)
        (date(2025, 1, 9), False, None),  # national day of mourning (Carter)
        (date(2025, 7, 3), True, time(13)),  # early close before Independence Day
        (date(2025, 12, 24), True, time(13)),  # Christmas Eve
        (date(2025, 11, 11), True, time(16)),  # Veterans Day: bond market closed, stocks open
    ],
)
def test_nasdaq_calendar(day, is_open, close):
    trading_day = trading_day_get(day=day)
    assert (trading_day.is_open, trading_day.close_time) == (is_open, close)


def test_overrides_close_a_day_add_an_early_close_or_reopen_a_holiday():
    calendar_override_set(day="2025-09-10", kind="CLOSED", reason="unscheduled closure")
    calendar_override_set(day="2025-09-11", kind="EARLY_CLOSE", reason="systems issue", close_time=time(14, 30))
    calendar_override_set(day="2025-12-25", kind="OPEN", reason="hypothetical")
    assert trading_day_get(day=date(2025, 9, 10)).is_open is False
    assert market_close_at(day=date(2025, 9, 11)) == datetime(2025, 9, 11, 14, 30, tzinfo=NY)
    assert trading_day_get(day=date(2025, 9, 11)).early_close
    assert trading_day_get(day=date(2025, 12, 25)).is_open
    with pytest.raises(MarketClosed):
        round_open(code="20250910")
    assert round_open(code="20250911")[0].lock_at == datetime(2025, 9, 11, 14, 29, 59, tzinfo=NY)


def test_override_needs_a_reason_and_a_kind():
    with pytest.raises(ReasonRequired):  # code "reason_required", one class for every app (was InvalidDate)
        calendar_override_set(day="2025-09-10", kind="CLOSED", reason=" ")
    with pytest.raises(InvalidDate):
        calendar_override_set(day="2025-09-10", kind="MAYBE", reason="x")


def test_previous_trading_day_skips_weekends_holidays_and_closures():
    assert trading_day_previous(day=date(2025, 9, 8)) == date(2025, 9, 5)  # Monday -> Friday
    assert trading_day_previous(day=date(2025, 9, 2)) == date(2025, 8, 29)  # after Labor Day
    assert trading_day_previous(day=date(2025, 1, 10)) == date(2025, 1, 8)  # over the day of mourning
    calendar_override_set(day="2025-09-05", kind="CLOSED", reason="closure")
    assert trading_day_previous(day=date(2025, 9, 8)) == date(2025, 9, 4)


def test_oracle_reads_official_closes_and_previous_close():
    assert official_close_get(symbol="NDX", day=date(2025, 9, 8)) is None
    official_close_set(symbol="ndx", day="2025-09-05", price="23652.44", source="nasdaq.com")
    official_close_set(symbol="NDX", day="2025-09-08", price="23762.1")
    assert official_close_get(symbol="NDX", day=date(2025, 9, 8)) == ClosePrice(
        symbol="NDX", date=date(2025, 9, 8), price=Decimal("23762.100000"), source="manual"
    )
    reference = reference_close_get(symbol="NDX", day=date(2025, 9, 8))
    assert (reference.date, reference.price, reference.source) == (date(2025, 9, 5), Decimal("23652.44"), "nasdaq.com")


def test_a_different_oracle_can_be_plugged_in(settings):
    settings.PRICE_ORACLE = "tests.marketdata.test_calendar_and_oracle.FixedOracle"
    assert official_close_get(symbol="NDX", day=date(2025, 9, 8)).source == "fixed"


class FixedOracle:
    def official_close(self, *, symbol, day):
        return ClosePrice(symbol=symbol, date=day, price=Decimal("1"), source="fixed")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"price": "0"}, InvalidPrice),
        ({"price": "-5"}, InvalidPrice),
        ({"price": "NaN"}, InvalidPrice),
        ({"price": "1e400"}, InvalidPrice),
        ({"price": "x"}, InvalidPrice),
        ({"symbol": "N D X"}, InvalidSymbol),
        ({"day": "2025-13-01"}, InvalidDate),
    ],
)
def test_set_close_refuses_bad_input(kwargs, error):
    with pytest.raises(error):
        official_close_set(**{"symbol": "NDX", "day": "2025-09-08", "price": "1", **kwargs})
