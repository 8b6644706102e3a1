"""Writes of market data: official closes (operators, or a price source) and calendar overrides.

A person entering either needs the model's change permission (the admin asks the same); a
caller without a Django user (the shell without --actor, a price source) is not a person.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.types import User
from marketdata.exceptions import CloseNotYet, InvalidDate, InvalidPrice, InvalidSymbol, MarketDataError
from marketdata.models import CalendarOverride, CloseCheck, CloseQuote, OfficialClose, PriceSource, PriceTick, TickDaily
from marketdata.oracle import FETCHED_KINDS, price_oracle, source_specs
from marketdata.quorum import quorum_decide
from marketdata.selectors import FIXED_EST, TickBucket, market_close_at, market_open_at, market_timezone, tick_buckets
from marketdata.sources import Quote, quotes_fetch_all

_SYMBOL = re.compile(r"^[A-Z0-9.^]{1,16}$")
_MAX_PRICE = Decimal("999999999999.999999")


def price_parse(value: Any) -> Decimal:
    """A close price: a positive decimal with at most 6 places (as stored)."""
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidPrice(f"Price must be a decimal number, got {value!r}.") from None
    if not price.is_finite() or price <= 0:
        raise InvalidPrice(f"Price must be greater than zero, got {value!r}.")
    exponent = price.as_tuple().exponent  # an int for every finite decimal ("n"/"N"/"F" are NaN/Inf)
    if not isinstance(exponent, int) or exponent < -6:
        raise InvalidPrice(f"Price has more than 6 decimal places: {value!r}.")
    if price > _MAX_PRICE:
        raise InvalidPrice(f"Price {value!r} is too large.")
    return price


def symbol_parse(value: Any) -> str:
    symbol = str(value or "").strip().upper()
    if not _SYMBOL.match(symbol):
        raise InvalidSymbol(f"Symbol must be 1-16 letters or digits, got {value!r}.")
    return symbol


def date_parse(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for pattern in (r"^\d{4}-\d{2}-\d{2}$", r"^\d{8}$"):
        if re.match(pattern, text):
            digits = text.replace("-", "")
            try:
                return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            except ValueError:
                break
    raise InvalidDate(f"Date must be YYYY-MM-DD (or YYYYMMDD), got {value!r}.")


def close_not_yet_refuse(*, day: date, now: datetime | None = None) -> None:
    """A close is a fact after the market closed: refuse one for a later day, or for today before the bell."""
    now = now or timezone.now()
    today = now.astimezone(market_timezone()).date()
    close_at = market_close_at(day=day)
    if day > today or (close_at is not None and now < close_at):
        when = (
            f"at {close_at.astimezone(market_timezone()):%H:%M} ET" if close_at else "(the market is closed that day)"
        )
        raise CloseNotYet(
            f"The close of {day:%Y-%m-%d} has not happened yet {when}; it is "
            f"{now.astimezone(market_timezone()):%Y-%m-%d %H:%M} ET now."
        )


def official_close_set(
    *,
    symbol: str,
    day: Any,
    price: Any,
    source: str = "manual",
    acting_user: User | None = None,
    channel: str = "cli",
    reason: str = "",
) -> OfficialClose:
    """Record (or correct) the official close of `symbol` on `day`. Audited with the old value."""
    if acting_user is not None:
        permission_require(
            acting_user, "marketdata.change_officialclose", detail="Entering an official close needs that permission."
        )
    symbol, day, price = symbol_parse(symbol), date_parse(day), price_parse(price)
    close_not_yet_refuse(day=day)
    with transaction.atomic():
        existing = OfficialClose.objects.select_for_update().filter(symbol=symbol, date=day).first()
        before = {"price": str(existing.price), "source": existing.source} if existing else None
        if existing is None:
            close = OfficialClose.objects.create(
                symbol=symbol,
                date=day,
                price=price,
                source=source,
                created_by=acting_user if getattr(acting_user, "pk", None) else None,
            )
        else:
            close = existing
            close.price, close.source = price, source
            close.save(update_fields=["price", "source", "updated_at"])
        audit_record(
            action=AuditAction.MARKETDATA_SET_CLOSE,
            source=channel,
            actor=acting_user,
            object_type="official_close",
            object_id=f"{symbol}:{day.isoformat()}",
            reason=reason,
            before=before,
            after={"price": str(price), "source": source},
        )
    return close


def calendar_override_set(
    *,
    day: Any,
    kind: str,
    reason: str,
    close_time: time | None = None,
    acting_user: User | None = None,
    channel: str = "admin",
) -> CalendarOverride:
    """Mark an unscheduled closure, an extra early close, or a holiday the market opened after all."""
    if acting_user is not None:
        permission_require(
            acting_user,
            "marketdata.change_calendaroverride",
            detail="Overriding the trading calendar needs that permission.",
        )
    day = date_parse(day)
    if kind not in CalendarOverride.Kind.values:
        raise InvalidDate(f"Kind must be one of {', '.join(CalendarOverride.Kind.values)}.", code="invalid_kind")
    if not (reason or "").strip():
        raise ReasonRequired("A calendar override needs a reason.")
    with transaction.atomic():
        existing = CalendarOverride.objects.select_for_update().filter(date=day).first()
        before = {"kind": existing.kind, "close_time": str(existing.close_time or "")} if existing else None
        override, _ = CalendarOverride.objects.update_or_create(
            date=day,
            defaults={
                "kind": kind,
                "close_time": close_time,
                "reason": reason,
                "created_by": acting_user if getattr(acting_user, "pk", None) else None,
            },
        )
        audit_record(
            action=AuditAction.MARKETDATA_CALENDAR_OVERRIDE,
            source=channel,
            actor=acting_user,
            object_type="calendar_override",
            object_id=day.isoformat(),
            reason=reason,
            before=before,
            after={"kind": kind, "close_time": str(close_time or "")},
        )
    return override


# --- price sources: health, enable/disable, test now ------------------------------------------

RECENT_WINDOW = 20
# Quorum verdicts that say nothing bad about the source itself.
_HEALTHY_REASONS = ("", "no_quorum")


def source_health_record(*, quotes: list[tuple[Quote, str]], now: datetime) -> None:
    """Fold each (quote, verdict reason) into its source's health and rejection counters."""
    for quote, reason in quotes:
        with transaction.atomic():
            source = PriceSource.objects.select_for_update().filter(name=quote.source).first()
            if source is None:
                continue
            ok = reason in _HEALTHY_REASONS
            source.recent = (source.recent + ("1" if ok else "0"))[-RECENT_WINDOW:]
            source.last_latency_ms = quote.latency_ms
            if quote.ok:
                source.last_success_at = now
            if ok:
                source.consecutive_failures = 0
            else:
                source.consecutive_failures += 1
                source.last_failure_at = now
                source.last_error = f"{reason}: {quote.detail if quote.reason else _verdict_detail(quote, reason)}"[
                    :500
                ]
                counts = dict(source.rejected or {})
                counts[reason] = int(counts.get(reason, 0)) + 1
                source.rejected = counts
            source.save(
                update_fields=[
                    "recent", "last_latency_ms", "last_success_at", "consecutive_failures", "last_failure_at",
                    "last_error", "rejected", "updated_at",
                ]
            )  # fmt: skip


def _verdict_detail(quote: Quote, reason: str) -> str:
    return f"price {quote.price} at {quote.ts.isoformat() if quote.ts else '?'}"


_SOURCE_FIELDS = ("enabled", "weight", "timeout_ms", "config")


def price_source_update(
    *, name: str, changes: dict[str, Any], acting_user: User | None = None, channel: str = "admin", reason: str = ""
) -> PriceSource:
    """Enable, disable or reconfigure a source (weight, timeout, config). Audited with the old values."""
    if acting_user is not None:
        permission_require(
            acting_user, "marketdata.change_pricesource", detail="Changing a price source needs that permission."
        )
    unknown = set(changes) - set(_SOURCE_FIELDS)
    if unknown:
        raise MarketDataError(f"Cannot change {', '.join(sorted(unknown))} of a price source.", code="invalid_field")
    if "timeout_ms" in changes and not (100 <= int(changes["timeout_ms"]) <= 60000):
        raise MarketDataError("Timeout must be 100-60000 ms.", code="invalid_timeout")
    if "weight" in changes and not (1 <= int(changes["weight"]) <= 100):
        raise MarketDataError("Weight must be 1-100.", code="invalid_weight")
    if "config" in changes and not isinstance(changes["config"], dict):
        raise MarketDataError("Config must be a JSON object.", code="invalid_config")
    with transaction.atomic():
        source = PriceSource.objects.select_for_update().filter(name=name).first()
        if source is None:
            raise MarketDataError(f"No price source {name!r}.", code="unknown_source")
        before = {f: getattr(source, f) for f in changes}
        for field_name, value in changes.items():
            setattr(source, field_name, value)
        source.save(update_fields=[*changes, "updated_at"])
        audit_record(
            action=AuditAction.MARKETDATA_SOURCE_CHANGE,
            source=channel,
            actor=acting_user,
            object_type="price_source",
            object_id=name,
            reason=reason,
            before=before,
            after={f: getattr(source, f) for f in changes},
        )
    return source


def price_source_test(
    *, name: str, symbol: str, day: date | None = None, acting_user: User | None = None, channel: str = "admin"
) -> Quote:
    """Ask one source now (enabled or not) and say what it answered; health is updated, nothing else."""
    if acting_user is not None:
        permission_require(
            acting_user, "marketdata.change_pricesource", detail="Testing a price source needs that permission."
        )
    symbol = symbol_parse(symbol)
    specs = source_specs(enabled_only=False, kinds=tuple(PriceSource.Kind.values))
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        raise MarketDataError(f"No price source {name!r}.", code="unknown_source")
    quote = quotes_fetch_all([spec], symbol=symbol, day=day)[0]
    now = timezone.now()
    with transaction.atomic():
        if spec.kind != PriceSource.Kind.MANUAL:
            source_health_record(quotes=[(quote, quote.reason)], now=now)
        audit_record(
            action=AuditAction.MARKETDATA_SOURCE_TEST,
            source=channel,
            actor=acting_user,
            object_type="price_source",
            object_id=name,
            after={"symbol": symbol, "day": day.isoformat() if day else None, "price": str(quote.price or ""),
                   "ts": quote.ts.isoformat() if quote.ts else None, "reason": quote.reason, "detail": quote.detail},
        )  # fmt: skip
    return quote


# --- the official close by quorum -------------------------------------------------------------


@dataclass(frozen=True)
class CloseResolution:
    symbol: str
    day: date
    price: Decimal | None
    source: str  # the OfficialClose source ("manual", "quorum", ...) when known
    reason: str  # why there is no price ("" when there is)
    checked: bool  # the sources were asked (a CloseCheck with evidence was recorded)


def official_close_resolve(*, symbol: str, day: date, now: datetime | None = None) -> CloseResolution:
    """Make sure the official close of `symbol` on `day` is known, if it can be.

    The table first (an operator's close, or one a quorum accepted before, is final). Else the
    oracle's sources are asked (outside any transaction: no lock is held while they answer), the
    answers judged by quorum (marketdata.quorum) and recorded as a CloseCheck with one CloseQuote
    per source; an accepted price becomes the OfficialClose (source "quorum"), audited.
    """
    now = now or timezone.now()
    symbol = symbol_parse(symbol)
    oracle = price_oracle()
    known = oracle.official_close(symbol=symbol, day=day)
    if known is not None:
        return CloseResolution(symbol, day, known.price, known.source, "", False)
    close_at = market_close_at(day=day)
    if close_at is None:
        return CloseResolution(symbol, day, None, "", f"the market was closed on {day}", False)
    if now < close_at:
        return CloseResolution(symbol, day, None, "", f"the close of {day} has not happened yet", False)
    ask = getattr(oracle, "close_quotes", None)  # an oracle of before the sources has only official_close
    quotes = ask(symbol=symbol, day=day) if ask is not None else None
    if quotes is None:
        return CloseResolution(symbol, day, None, "", "no close entered (the oracle asks no price source)", False)
    decision = quorum_decide(
        quotes,
        close_at=close_at,
        now=now,
        quorum=settings.ORACLE_QUORUM,
        max_deviation_bps=settings.ORACLE_MAX_DEVIATION_BPS,
        allowance=timedelta(seconds=settings.ORACLE_CLOSE_ALLOWANCE_SECONDS),
    )
    source_health_record(quotes=[(v.quote, v.reason) for v in decision.verdicts], now=now)
    with transaction.atomic():
        check = CloseCheck.objects.create(
            symbol=symbol,
            date=day,
            outcome=CloseCheck.Outcome.ACCEPTED if decision.accepted else CloseCheck.Outcome.NO_QUORUM,
            price=decision.price,
            reason=decision.reason,
            quorum=settings.ORACLE_QUORUM,
            max_deviation_bps=settings.ORACLE_MAX_DEVIATION_BPS,
            checked_at=now,
        )
        CloseQuote.objects.bulk_create(
            CloseQuote(
                close_check=check,
                source=v.quote.source,
                price=v.quote.price,
                quote_ts=v.effective_ts,
                payload_sha256=v.quote.payload_sha256,
                accepted=v.accepted,
                reason=v.reason,
                detail=v.detail[:500],
                latency_ms=v.quote.latency_ms,
            )
            for v in decision.verdicts
        )
        if decision.price is None:
            return CloseResolution(symbol, day, None, "", decision.reason, True)
        accepted = [v.quote.source for v in decision.verdicts if v.accepted]
        try:
            with transaction.atomic():
                OfficialClose.objects.create(symbol=symbol, date=day, price=decision.price, source="quorum")
        except IntegrityError:  # an operator (or a twin tick) entered it meanwhile: theirs stands
            row = OfficialClose.objects.get(symbol=symbol, date=day)
            return CloseResolution(symbol, day, row.price, row.source, "", True)
        audit_record(
            action=AuditAction.MARKETDATA_CLOSE_QUORUM,
            source="oracle",
            object_type="official_close",
            object_id=f"{symbol}:{day.isoformat()}",
            reason=f"{len(accepted)} of {len(quotes)} sources agree within {settings.ORACLE_MAX_DEVIATION_BPS} bps",
            after={"price": str(decision.price), "source": "quorum", "accepted": accepted, "check": check.pk},
        )
    return CloseResolution(symbol, day, decision.price, "quorum", "", True)


# --- ingestion of live ticks -------------------------------------------------------------------

_BACKOFF_MAX_SECONDS = 900


@dataclass
class IngestReport:
    ticks: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # "source symbol" -> "tick 123.45" / reason / "backoff"


def _in_backoff(source: PriceSource, now: datetime) -> bool:
    """After n failures in a row a source is asked again only after INGEST * 2^(n-1) s (at most 15 min)."""
    if not source.consecutive_failures or source.last_failure_at is None:
        return False
    wait = min(settings.PRICE_INGEST_SECONDS * 2 ** (source.consecutive_failures - 1), _BACKOFF_MAX_SECONDS)
    return (now - source.last_failure_at).total_seconds() < wait


def _tick_verdict(quote: Quote, *, now: datetime, newest: datetime | None, market_open: bool) -> tuple[str, str]:
    """("", "") to keep the tick, ("duplicate", "") for a price already stored, else a rejection."""
    if not quote.ok:
        return quote.reason, quote.detail
    assert quote.ts is not None
    if quote.date_only:
        return "stale", f"dated {quote.ts.date()}, not today"
    if quote.ts > now + timedelta(seconds=60):
        return "future_timestamp", f"stamped {quote.ts.isoformat()}, in the future"
    if newest is not None and quote.ts <= newest:
        return "duplicate", ""  # nothing new since the last poll (after hours, a weekend): not a failure
    if market_open and (now - quote.ts).total_seconds() > settings.PRICE_TICK_STALE_SECONDS:
        return "stale", f"stamped {quote.ts.isoformat()}, older than {settings.PRICE_TICK_STALE_SECONDS} s"
    return "", ""


def prices_ingest(*, now: datetime | None = None, symbols: list[str] | None = None) -> IngestReport:
    """Poll every enabled source for a live quote of each symbol and store the new ticks.

    All sources of a symbol are asked at once, each with its own timeout and retries
    (marketdata.sources.quotes_fetch_all): a failing or hanging source costs only its own
    budget and never stops the others. A source that keeps failing is backed off.
    """
    now = now or timezone.now()
    report = IngestReport()
    market_open = market_open_at(now=now)
    rows = {s.name: s for s in PriceSource.objects.filter(enabled=True, kind__in=FETCHED_KINDS)}
    specs = []
    for spec in source_specs():
        if not spec.config.get("quote_url"):
            continue
        if _in_backoff(rows[spec.name], now):
            report.outcomes.update({f"{spec.name} {s}": "backoff" for s in symbols or settings.PRICE_SYMBOLS})
            continue
        specs.append(spec)
    for symbol in [symbol_parse(s) for s in symbols or settings.PRICE_SYMBOLS]:
        quotes = quotes_fetch_all(specs, symbol=symbol, retries=settings.PRICE_FETCH_RETRIES)
        newest = dict(
            PriceTick.objects.filter(symbol=symbol).values("source").annotate(at=Max("ts")).values_list("source", "at")
        )
        ticks, health = [], []
        for quote in quotes:
            if quote.ok and quote.date_only and quote.ts is not None:
                # a vendor giving only the trading day of its last price: today's means now
                today = now.astimezone(market_timezone()).date()
                quote = replace(quote, ts=now, date_only=False) if quote.ts.date() == today else quote
            reason, detail = _tick_verdict(quote, now=now, newest=newest.get(quote.source), market_open=market_open)
            if reason == "duplicate":
                health.append((quote, ""))
                report.outcomes[f"{quote.source} {symbol}"] = f"unchanged {quote.price}"
                continue
            health.append((replace(quote, detail=detail) if reason else quote, reason))
            if reason:
                report.outcomes[f"{quote.source} {symbol}"] = f"rejected {reason}: {detail}"
                continue
            assert quote.price is not None and quote.ts is not None
            ticks.append(PriceTick(symbol=symbol, price=quote.price, source=quote.source, ts=quote.ts, received_at=now))
            report.outcomes[f"{quote.source} {symbol}"] = f"tick {quote.price}"
        PriceTick.objects.bulk_create(ticks)
        report.ticks += len(ticks)
        source_health_record(quotes=health, now=now)
    return report


# --- retention: archive_ticks -------------------------------------------------------------------


@dataclass
class ArchiveReport:
    cutoff: datetime
    deleted: int = 0
    days: int = 0  # (symbol, day) summaries written or extended


def _daily_merge(*, symbol: str, bucket: TickBucket) -> bool:
    """Fold one day's batch into its price_tick_daily row (each tick is summarised exactly once). True if new."""
    day = bucket.candle.start.astimezone(FIXED_EST).date()
    candle = bucket.candle
    row = TickDaily.objects.select_for_update().filter(symbol=symbol, date=day).first()
    if row is None:
        TickDaily.objects.create(
            symbol=symbol, date=day, open=candle.open, high=candle.high, low=candle.low, close=candle.close,
            tick_count=candle.ticks, first_ts=bucket.first_ts, last_ts=bucket.last_ts,
        )  # fmt: skip
        return True
    row.high, row.low, row.tick_count = (
        max(row.high, candle.high),
        min(row.low, candle.low),
        row.tick_count + candle.ticks,
    )
    if bucket.first_ts < row.first_ts:
        row.open, row.first_ts = candle.open, bucket.first_ts
    if bucket.last_ts >= row.last_ts:
        row.close, row.last_ts = candle.close, bucket.last_ts
    row.save()
    return False


def ticks_archive(
    *,
    older_than: timedelta,
    batch_size: int = 50_000,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    source: str = "cli",
) -> ArchiveReport:
    """Delete ticks older than `older_than` (whole days, in fixed UTC-05:00 like the 1d candles), batch by batch.

    Each batch is one transaction: its ticks are summarised into price_tick_daily (what 1d candles of
    older periods read) and deleted together, so an interrupted run loses nothing and counts nothing
    twice; running it again carries on. Prints a progress line per batch through `progress`.
    """
    now = now or timezone.now()
    day = (now - older_than).astimezone(FIXED_EST).date()
    cutoff = datetime.combine(day, datetime.min.time(), tzinfo=FIXED_EST)
    report = ArchiveReport(cutoff=cutoff)
    adapt = connection.ops.adapt_datetimefield_value
    for symbol in PriceTick.objects.filter(ts__lt=cutoff).values_list("symbol", flat=True).distinct().order_by():
        total = PriceTick.objects.filter(symbol=symbol, ts__lt=cutoff).count()
        done = 0
        while True:
            with transaction.atomic():
                old = PriceTick.objects.filter(symbol=symbol, ts__lt=cutoff).order_by("ts", "id")
                edge = (
                    old.values_list("ts", "id")[batch_size - 1 : batch_size].first()
                    or old.values_list("ts", "id").last()
                )
                if edge is None:
                    break
                edge_ts, edge_id = edge
                where = "(p.ts < %s OR (p.ts = %s AND p.id <= %s))"
                params = [adapt(edge_ts), adapt(edge_ts), edge_id]
                for bucket in tick_buckets(symbol=symbol, seconds=86400, where=where, params=params):
                    report.days += int(_daily_merge(symbol=symbol, bucket=bucket))
                batch = PriceTick.objects.filter(symbol=symbol).filter(
                    Q(ts__lt=edge_ts) | Q(ts=edge_ts, id__lte=edge_id)
                )
                deleted, _ = batch.delete()
            done += deleted
            report.deleted += deleted
            if progress:
                progress(f"{symbol}: archived {done} of {total} ticks (up to {edge_ts:%Y-%m-%d %H:%M:%S} UTC)")
    with transaction.atomic():
        audit_record(
            action=AuditAction.MARKETDATA_TICKS_ARCHIVE,
            source=source,
            object_type="price_ticks",
            object_id=cutoff.date().isoformat(),
            reason=f"ticks older than {older_than.days} days",
            after={"deleted": report.deleted, "new_days": report.days, "cutoff": cutoff.isoformat()},
        )
    return report


def price_source_create(
    *,
    name: str,
    kind: str,
    enabled: bool = False,
    weight: int = 1,
    timeout_ms: int = 5000,
    config: dict[str, Any] | None = None,
    acting_user: User | None = None,
    channel: str = "admin",
) -> PriceSource:
    """A new source (an operator adds one as data, no code). Audited."""
    if acting_user is not None:
        permission_require(
            acting_user, "marketdata.add_pricesource", detail="Adding a price source needs that permission."
        )
    name = str(name or "").strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise MarketDataError(
            f"A source name is 1-64 lowercase letters, digits, - or _, got {name!r}.", code="invalid_name"
        )
    if kind not in PriceSource.Kind.values:
        raise MarketDataError(f"Kind must be one of {', '.join(PriceSource.Kind.values)}.", code="invalid_kind")
    with transaction.atomic():
        if PriceSource.objects.filter(name=name).exists():
            raise MarketDataError(f"A price source {name!r} exists already.", code="source_exists")
        PriceSource.objects.create(name=name, kind=kind, config=config or {})
        audit_record(
            action=AuditAction.MARKETDATA_SOURCE_CHANGE,
            source=channel,
            actor=acting_user,
            object_type="price_source",
            object_id=name,
            reason="added",
            after={"kind": kind},
        )
    return price_source_update(
        name=name,
        changes={"enabled": enabled, "weight": weight, "timeout_ms": timeout_ms},
        acting_user=acting_user,
        channel=channel,
        reason="added",
    )
