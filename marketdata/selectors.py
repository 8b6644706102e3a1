"""Reads: the NASDAQ trading calendar and the official closes settlement uses."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.db.models import Max

from marketdata.models import CalendarOverride, CloseCheck, OfficialClose
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


# --- evidence of official closes --------------------------------------------------------------


def close_evidence_get(*, symbol: str, day: date) -> dict | None:
    """The latest quorum check of `symbol`'s close on `day` with every source's answer, or None.

    What the round API and admin show: {"date", "outcome", "price", "reason", "quorum",
    "max_deviation_bps", "checked_at", "checks", "quotes": [{"source", "price", "ts",
    "payload_sha256", "accepted", "reason", "detail", "latency_ms"}]}.
    """
    checks = CloseCheck.objects.filter(symbol=symbol.upper(), date=day)
    check = checks.order_by("-checked_at", "-id").first()
    if check is None:
        return None
    return {
        "date": check.date.isoformat(),
        "outcome": check.outcome,
        "price": None if check.price is None else str(check.price),
        "reason": check.reason,
        "quorum": check.quorum,
        "max_deviation_bps": check.max_deviation_bps,
        "checked_at": check.checked_at.isoformat(),
        "checks": checks.count(),
        "quotes": [
            {
                "source": q.source,
                "price": None if q.price is None else str(q.price),
                "ts": q.quote_ts.isoformat() if q.quote_ts else None,
                "payload_sha256": q.payload_sha256,
                "accepted": q.accepted,
                "reason": q.reason,
                "detail": q.detail,
                "latency_ms": q.latency_ms,
            }
            for q in check.quotes.order_by("source")
        ],
    }


def close_failures(*, keys: list[tuple[str, date]]) -> dict[tuple[str, date], str]:
    """{(symbol, day): reason} for each close still unknown whose latest quorum check found no quorum."""
    failures = {}
    for symbol, day in keys:
        if OfficialClose.objects.filter(symbol=symbol, date=day).exists():
            continue
        check = CloseCheck.objects.filter(symbol=symbol, date=day).order_by("-checked_at", "-id").first()
        if check is not None and check.outcome == CloseCheck.Outcome.NO_QUORUM:
            failures[(symbol, day)] = check.reason
    return failures


def close_check_last_at(*, symbol: str, day: date) -> datetime | None:
    return CloseCheck.objects.filter(symbol=symbol, date=day).aggregate(at=Max("checked_at"))["at"]
