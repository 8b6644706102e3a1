"""Reads: the NASDAQ trading calendar and the official closes settlement uses."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.db.models import Max
from django.utils import timezone as django_timezone

from marketdata.models import CalendarOverride, OfficialClose
from marketdata.oracle import ClosePrice, price_oracle

REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
# Far enough back to cross any run of closures (9/11 closed the market four days).
_MAX_LOOKBACK_DAYS = 31


@dataclass(frozen=True)
class TradingDay:
    date: date
    is_open: bool
    close_time: time | None  # local market time; None when closed
    reason: str  # "" on an ordinary day, else the holiday / half-day / override reason

    @property
    def early_close(self) -> bool:
        return self.is_open and self.close_time is not None and self.close_time < REGULAR_CLOSE


def market_timezone() -> ZoneInfo:
    return ZoneInfo(settings.MARKET_TIMEZONE)


@functools.lru_cache(maxsize=64)
def _exchange_calendar(year: int) -> tuple[dict[date, str], dict[date, str]]:
    """(full-day holidays, half days) of NASDAQ for `year`, from the `holidays` package."""
    closed = holidays.financial_holidays("XNAS", years=year)
    half_days = holidays.financial_holidays("XNAS", years=year, categories=("half_day",))
    return dict(closed), dict(half_days)


def _scheduled_day(day: date) -> TradingDay:
    closed, half_days = _exchange_calendar(day.year)
    if day in closed:
        return TradingDay(date=day, is_open=False, close_time=None, reason=str(closed[day]))
    if day.weekday() >= 5:
        return TradingDay(date=day, is_open=False, close_time=None, reason="weekend")
    if day in half_days:
        return TradingDay(date=day, is_open=True, close_time=EARLY_CLOSE, reason=str(half_days[day]))
    return TradingDay(date=day, is_open=True, close_time=REGULAR_CLOSE, reason="")


def _apply_override(scheduled: TradingDay, override: CalendarOverride | None) -> TradingDay:
    if override is None:
        return scheduled
    day = scheduled.date
    if override.kind == CalendarOverride.Kind.CLOSED:
        return TradingDay(date=day, is_open=False, close_time=None, reason=override.reason)
    if override.kind == CalendarOverride.Kind.EARLY_CLOSE:
        return TradingDay(date=day, is_open=True, close_time=override.close_time or EARLY_CLOSE, reason=override.reason)
    return TradingDay(date=day, is_open=True, close_time=REGULAR_CLOSE, reason=override.reason)


def trading_day_get(*, day: date) -> TradingDay:
    """Is the market open on `day`, and when does it close? Operator overrides win."""
    return _apply_override(_scheduled_day(day), CalendarOverride.objects.filter(date=day).first())


def trading_day_previous(*, day: date) -> date:
    """The last trading day strictly before `day` (the reference close of `day`'s round)."""
    start = day - timedelta(days=_MAX_LOOKBACK_DAYS)
    overrides = {o.date: o for o in CalendarOverride.objects.filter(date__gte=start, date__lt=day)}
    candidate = day - timedelta(days=1)
    while candidate >= start:
        if _apply_override(_scheduled_day(candidate), overrides.get(candidate)).is_open:
            return candidate
        candidate -= timedelta(days=1)
    raise ValueError(f"No trading day in the {_MAX_LOOKBACK_DAYS} days before {day}.")


def market_close_at(*, day: date) -> datetime | None:
    """The aware datetime the market closes on `day`, or None when it is closed."""
    trading_day = trading_day_get(day=day)
    if not trading_day.is_open or trading_day.close_time is None:  # a closed day has no close time
        return None
    return datetime.combine(day, trading_day.close_time, tzinfo=market_timezone())


def market_today(*, now: datetime) -> date:
    return now.astimezone(market_timezone()).date()


def official_close_get(*, symbol: str, day: date) -> ClosePrice | None:
    """The oracle's official close of `symbol` on `day` (None when not known yet)."""
    return price_oracle().official_close(symbol=symbol, day=day)


def reference_close_get(*, symbol: str, day: date) -> ClosePrice | None:
    """The previous trading day's official close: what `day`'s close is compared with."""
    return official_close_get(symbol=symbol, day=trading_day_previous(day=day))


def marketdata_last_writes() -> dict[str, datetime | None]:
    """{"table.column": latest stamp} of every timestamp market data stamps on a write (the restore's quiet clock)."""
    return {
        f"{OfficialClose._meta.db_table}.updated_at": OfficialClose.objects.aggregate(at=Max("updated_at"))["at"],
        f"{CalendarOverride._meta.db_table}.created_at": CalendarOverride.objects.aggregate(at=Max("created_at"))["at"],
    }


@dataclass(frozen=True)
class SymbolFeed:
    symbol: str
    newest: str  # ISO date (an official close) or time (a tick) of the newest price, "" when none
    age_seconds: float | None  # how old that price is now
    target_seconds: float | None  # how old it may be (None: no target)


@dataclass(frozen=True)
class SourceFeed:
    name: str
    up: bool
    success_rate: float | None  # 0..1 over the recent polls
    last_error: str


@dataclass(frozen=True)
class FeedStatus:
    symbols: list[SymbolFeed]
    sources: list[SourceFeed]


def feed_status(*, now: datetime | None = None) -> FeedStatus:
    """How fresh the prices are, per symbol, and how each price source fares (one statement).

    Today there are only the official closes: per symbol its newest close, aged from that day's
    regular close (16:00 market time), and no sources yet.
    """
    now = now or django_timezone.now()
    newest = dict(OfficialClose.objects.values("symbol").annotate(day=Max("date")).values_list("symbol", "day"))
    newest.setdefault(settings.MARKET_SYMBOL, None)
    symbols = []
    for symbol, day in sorted(newest.items()):
        closed_at = datetime.combine(day, REGULAR_CLOSE, tzinfo=market_timezone()) if day else None
        age = (now - closed_at).total_seconds() if closed_at else None
        symbols.append(SymbolFeed(symbol, day.isoformat() if day else "", age, None))
    return FeedStatus(symbols=symbols, sources=[])
