"""Reads: the NASDAQ trading calendar and the official closes settlement uses."""

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from marketdata.models import CalendarOverride, CloseCheck, OfficialClose, PriceSource, PriceTick, TickDaily
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


def close_evidence_get(*, symbol: str, day: date) -> dict[str, Any] | None:
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


# --- the feed: freshness of ticks, health of sources (one set of thresholds) --------------------

MARKET_OPEN = time(9, 30)


@dataclass(frozen=True)
class FeedThresholds:
    """The one definition of a healthy feed: the alert rules, the breaker, /metrics and the dashboard read it."""

    tick_stale_seconds: int  # newest tick of a symbol older than this in market hours: stale
    source_down_failures: int  # this many failures in a row: the source is down
    success_rate_amber: float  # below this share of the recent polls: amber


def feed_thresholds() -> FeedThresholds:
    return FeedThresholds(
        tick_stale_seconds=settings.PRICE_TICK_STALE_SECONDS,
        source_down_failures=settings.PRICE_SOURCE_DOWN_FAILURES,
        success_rate_amber=0.9,
    )


@dataclass(frozen=True)
class SymbolFeed:
    symbol: str
    newest_tick_at: datetime | None
    age_seconds: float | None  # None: no tick ever
    target_seconds: int
    stale: bool  # in market hours and older than the target (or none at all)


@dataclass(frozen=True)
class SourceFeed:
    name: str
    kind: str
    enabled: bool
    up: bool
    colour: str  # green / amber / red, grey when disabled
    success_rate: float | None  # share of the recent polls that succeeded (None: never polled)
    polls: int  # how many polls the rate is over (at most the window)
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str
    last_latency_ms: int | None
    rejected: dict[str, int]


@dataclass(frozen=True)
class FeedStatus:
    now: datetime
    market_open: bool
    thresholds: FeedThresholds
    symbols: list[SymbolFeed]
    sources: list[SourceFeed]

    @property
    def fetched_sources_enabled(self) -> list[SourceFeed]:
        return [s for s in self.sources if s.enabled and s.kind != PriceSource.Kind.MANUAL]

    @property
    def stale_symbols(self) -> list[SymbolFeed]:
        """The symbols whose feed is stale; none while no source is fetched (closes entered by hand)."""
        return [s for s in self.symbols if s.stale] if self.fetched_sources_enabled else []


def market_open_at(*, now: datetime) -> bool:
    """Regular session: a trading day, 09:30 ET to its close (13:00 on an early close)."""
    local = now.astimezone(market_timezone())
    close_at = market_close_at(day=local.date())
    if close_at is None:
        return False
    return datetime.combine(local.date(), MARKET_OPEN, tzinfo=market_timezone()) <= local < close_at


def source_feed(source: PriceSource, thresholds: FeedThresholds) -> SourceFeed:
    polls = len(source.recent)
    rate = source.recent.count("1") / polls if polls else None
    up = (
        source.enabled
        and source.last_success_at is not None
        and source.consecutive_failures < thresholds.source_down_failures
    )
    if not source.enabled:
        colour = "grey"
    elif not up:
        colour = "red"
    elif source.consecutive_failures or (rate is not None and rate < thresholds.success_rate_amber):
        colour = "amber"
    else:
        colour = "green"
    return SourceFeed(
        name=source.name,
        kind=source.kind,
        enabled=source.enabled,
        up=up,
        colour=colour,
        success_rate=rate,
        polls=polls,
        consecutive_failures=source.consecutive_failures,
        last_success_at=source.last_success_at,
        last_failure_at=source.last_failure_at,
        last_error=source.last_error,
        last_latency_ms=source.last_latency_ms,
        rejected={str(k): int(v) for k, v in (source.rejected or {}).items()},
    )


def newest_ticks_at(*, symbols: list[str]) -> dict[str, datetime | None]:
    """{symbol: time of its newest tick}: one statement, one index probe (symbol, ts) per symbol (a bare
    MAX under WHERE symbol = is read from the index's end), so its cost does not grow with the ticks kept."""
    if not symbols:
        return {}
    table = PriceTick._meta.db_table
    sql = " UNION ALL ".join([f"SELECT %s, (SELECT MAX(ts) FROM {table} WHERE symbol = %s)"] * len(symbols))  # noqa: S608 - the table name only
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for symbol in symbols for value in (symbol, symbol)])
        found = dict(cursor.fetchall())
    return {symbol: None if found.get(symbol) is None else _aware(found[symbol]) for symbol in symbols}


def feed_status(*, now: datetime | None = None) -> FeedStatus:
    """Per symbol of settings.PRICE_SYMBOLS (the ones ingested) the newest tick's age against the target;
    per source up/down, colour, success rate over the recent polls, last error. Read-only, a few queries."""
    now = now or timezone.now()
    thresholds = feed_thresholds()
    market_open = market_open_at(now=now)
    newest = newest_ticks_at(symbols=list(settings.PRICE_SYMBOLS))
    symbols = []
    for symbol in sorted(newest):
        at = newest.get(symbol)
        age = None if at is None else max(0.0, (now - at).total_seconds())
        stale = market_open and (age is None or age > thresholds.tick_stale_seconds)
        symbols.append(SymbolFeed(symbol, at, age, thresholds.tick_stale_seconds, stale))
    sources = [
        source_feed(s, thresholds) for s in PriceSource.objects.exclude(kind=PriceSource.Kind.MANUAL).order_by("name")
    ]
    return FeedStatus(now=now, market_open=market_open, thresholds=thresholds, symbols=symbols, sources=sources)


# --- candles ------------------------------------------------------------------------------------

CANDLE_INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
CANDLE_MAX_LIMIT = 1000
# Buckets are counted from the epoch in fixed UTC-05:00, so a 1d candle is midnight to midnight ET in
# winter (01:00 to 01:00 in summer): a whole session, pre- and after-hours included, is one 1d candle.
_BUCKET_OFFSET_SECONDS = -5 * 3600
FIXED_EST = dt_timezone(timedelta(seconds=_BUCKET_OFFSET_SECONDS))


@dataclass(frozen=True)
class Candle:
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    ticks: int


def candle_symbol_known(*, symbol: str) -> bool:
    symbol = symbol.upper()
    return (
        symbol in {s.upper() for s in settings.PRICE_SYMBOLS}
        or PriceTick.objects.filter(symbol=symbol).exists()
        or TickDaily.objects.filter(symbol=symbol).exists()
    )


def _epoch_sql() -> str:
    if connection.vendor == "postgresql":
        return "CAST(floor(date_part('epoch', ts)) AS BIGINT)"  # floor: a cast rounds 59.6 s up into the next bucket
    return "CAST(strftime('%%s', ts) AS INTEGER)"


def _decimal(value: Any) -> Decimal:
    # PostgreSQL answers numeric as Decimal; SQLite as float or int (6 places survive the round trip)
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def _bucket_start(bucket: int, seconds: int) -> datetime:
    return datetime.fromtimestamp(bucket * seconds - _BUCKET_OFFSET_SECONDS, tz=UTC)


@dataclass(frozen=True)
class TickBucket:
    candle: Candle
    first_ts: datetime
    last_ts: datetime


def _aware(value: Any) -> datetime:
    # PostgreSQL answers timestamptz as an aware datetime; SQLite as the stored UTC text
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    assert parsed is not None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tick_buckets(*, symbol: str, seconds: int, where: str, params: list[Any]) -> list[TickBucket]:
    """OHLC of the ticks of `symbol` matching `where` (SQL over ts and id), per bucket of `seconds`, oldest first.

    One pass aggregates each bucket; its open and close are then two index look-ups (symbol, ts) per
    bucket, the first and the last tick (the row inserted last wins a tie), not a sort of every tick.
    """
    bucket = f"(({_epoch_sql()} + {_BUCKET_OFFSET_SECONDS}) / {seconds})"
    sql = f"""
        SELECT g.bucket,
               (SELECT p.price FROM price_ticks p WHERE p.symbol = %s AND p.ts = g.first_ts AND ({where})
                ORDER BY p.id LIMIT 1),
               g.high, g.low,
               (SELECT p.price FROM price_ticks p WHERE p.symbol = %s AND p.ts = g.last_ts AND ({where})
                ORDER BY p.id DESC LIMIT 1),
               g.ticks, g.first_ts, g.last_ts
        FROM (
            SELECT bucket, MIN(ts) AS first_ts, MAX(ts) AS last_ts, MAX(price) AS high, MIN(price) AS low,
                   COUNT(*) AS ticks
            FROM (SELECT {bucket} AS bucket, price, ts FROM price_ticks p WHERE symbol = %s AND ({where})) t
            GROUP BY bucket
        ) g
    """  # noqa: S608 - only integers and fixed SQL are formatted in
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # JIT compiling this short query costs more than the query (about 0.9 s of 1.2 s, measured)
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [symbol, *params, symbol, *params, symbol, *params])
        rows = sorted(cursor.fetchall())  # one row a bucket; sorting here lets PostgreSQL hash-aggregate
    return [
        TickBucket(
            candle=Candle(
                start=_bucket_start(int(b), seconds),
                end=_bucket_start(int(b) + 1, seconds),
                open=_decimal(o),
                high=_decimal(h),
                low=_decimal(lo),
                close=_decimal(c),
                ticks=int(n),
            ),
            first_ts=_aware(first),
            last_ts=_aware(last),
        )
        for b, o, h, lo, c, n, first, last in rows
    ]


def candles_get(*, symbol: str, interval: str, limit: int) -> list[Candle]:
    """The last `limit` intervals of OHLC candles up to the newest tick, oldest first, aggregated in SQL.

    An interval without a tick has no candle. 1d also reads the daily summaries archive_ticks keeps
    for days whose ticks are gone.
    """
    seconds = CANDLE_INTERVALS[interval]
    symbol = symbol.upper()
    newest = PriceTick.objects.filter(symbol=symbol).aggregate(at=Max("ts"))["at"]
    candles: list[Candle] = []
    if newest is not None:
        newest_bucket = (int(newest.timestamp()) + _BUCKET_OFFSET_SECONDS) // seconds
        since = _bucket_start(newest_bucket - limit + 1, seconds)
        buckets = tick_buckets(
            symbol=symbol, seconds=seconds, where="p.ts >= %s", params=[connection.ops.adapt_datetimefield_value(since)]
        )
        candles = [b.candle for b in buckets]
    if interval == "1d" and len(candles) < limit:
        # the days archive_ticks summarised, in the same window: the last `limit` days up to the newest data
        older = TickDaily.objects.filter(symbol=symbol)
        if candles:
            older = older.filter(date__lt=candles[0].start.astimezone(FIXED_EST).date())
        newest_day = newest.astimezone(FIXED_EST).date() if newest else older.aggregate(d=Max("date"))["d"]
        if newest_day is not None:
            older = older.filter(date__gt=newest_day - timedelta(days=limit))
        summaries = [
            Candle(
                start=datetime.combine(d.date, datetime.min.time(), tzinfo=FIXED_EST),
                end=datetime.combine(d.date, datetime.min.time(), tzinfo=FIXED_EST) + timedelta(days=1),
                open=d.open,
                high=d.high,
                low=d.low,
                close=d.close,
                ticks=d.tick_count,
            )
            for d in older.order_by("-date")[: limit - len(candles)]
        ]
        candles = [*reversed(summaries), *candles]
    return candles[-limit:]
