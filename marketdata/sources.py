"""Asking a price source: one HTTP (or file) request, parsed into a Quote. No database here.

A `SourceSpec` is a snapshot of a PriceSource row, so the fetch can run in a worker thread.
Every way a source can fail becomes a Quote with a `reason` (a stable code) and a `detail`,
never an exception: a bad quote is evidence, not a crash.

Config keys (PriceSource.config):
- `close_url`, `quote_url`: templates with `{symbol}` (after `symbol_map`), `{date}` (YYYY-MM-DD),
  `{yyyymmdd}` and `{key}` (the environment variable named by `key_env`); `file://` reads a file inside
  PRICE_FILE_DIR (nowhere else: a source's config must not read the server's files).
- http_json: `price_path` / `ts_path` (close), `quote_price_path` / `quote_ts_path` (live), each a
  list of keys and list indexes; `"{date}"` in a path is the requested day. No `ts_path`: the quote
  is stamped with the requested day (end-of-day vendors that key their series by date).
- csv: `price_column`, `date_column`, optional `time_column`; the close is the row of the day,
  the live quote the last row.
- `auth_header` + `auth_env` (+ `auth_format`, default "{key}"): a header from an environment variable.
- `tz`: the zone of naive timestamps (default America/New_York).
"""

import csv
import hashlib
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings

MAX_BODY_BYTES = 1_000_000
_SIX_PLACES = Decimal("0.000001")
_MAX_PRICE = Decimal("999999999999")

# Every reason a quote can be rejected with, fetch- or quorum-side (the label set of the counter).
REJECT_REASONS = (
    "timeout",
    "unreachable",
    "http_error",
    "config",
    "html",
    "garbage",
    "missing",
    "non_positive",
    "future_timestamp",
    "stale",
    "late",
    "deviation",
    "no_quorum",
)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    timeout_ms: int
    weight: int = 1
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    source: str
    symbol: str
    price: Decimal | None = None
    ts: datetime | None = None
    date_only: bool = False  # the source gave a date, no time: stamped at midnight of that day (market zone)
    payload_sha256: str = ""
    latency_ms: int | None = None
    reason: str = ""  # "" when the quote parsed, else one of REJECT_REASONS
    detail: str = ""
    weight: int = 1

    @property
    def ok(self) -> bool:
        return not self.reason


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _zone(config: dict) -> ZoneInfo:
    try:
        return ZoneInfo(str(config.get("tz") or "America/New_York"))
    except (ZoneInfoNotFoundError, ValueError):
        raise _Rejected("config", f"unknown time zone {config.get('tz')!r}") from None


def url_render(template: str, *, symbol: str, day: date | None, config: dict) -> str:
    mapped = str((config.get("symbol_map") or {}).get(symbol, symbol))
    values = {"symbol": url_quote(mapped, safe=""), "date": "", "yyyymmdd": "", "key": ""}
    if day is not None:
        values.update(date=day.isoformat(), yyyymmdd=day.strftime("%Y%m%d"))
    if "{key}" in template:
        env_name = str(config.get("key_env") or "")
        key = os.environ.get(env_name, "") if env_name else ""
        if not key:
            raise _Rejected("config", f"no API key: set the environment variable {env_name or '(key_env)'}")
        values["key"] = url_quote(key, safe="")
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise _Rejected("config", f"bad URL template {template!r}: {exc}") from None


def _headers(config: dict) -> dict[str, str]:
    header = str(config.get("auth_header") or "")
    if not header:
        return {}
    env_name = str(config.get("auth_env") or "")
    key = os.environ.get(env_name, "") if env_name else ""
    if not key:
        raise _Rejected("config", f"no API key: set the environment variable {env_name or '(auth_env)'}")
    return {header: str(config.get("auth_format") or "{key}").replace("{key}", key)}


def _body_get(url: str, *, timeout_s: float, headers: dict[str, str]) -> bytes:
    if url.startswith("file://"):
        folder = Path(settings.PRICE_FILE_DIR).resolve()
        path = Path(url.removeprefix("file://")).resolve()
        if not path.is_relative_to(folder):
            raise _Rejected("config", f"a file source must be in PRICE_FILE_DIR ({folder})")
        try:
            with path.open("rb") as handle:
                return handle.read(MAX_BODY_BYTES + 1)[:MAX_BODY_BYTES]
        except OSError as exc:
            raise _Rejected("unreachable", f"cannot read {url}: {exc.strerror or exc}") from None
    deadline = time.monotonic() + timeout_s
    try:
        with requests.get(url, headers=headers, timeout=(timeout_s, timeout_s), stream=True) as response:
            if response.status_code != 200:
                raise _Rejected("http_error", f"HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=16384):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _Rejected("garbage", f"answer larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise _Rejected("timeout", f"no complete answer within {timeout_s:g} s")
            return b"".join(chunks)
    except requests.Timeout:
        raise _Rejected("timeout", f"no answer within {timeout_s:g} s") from None
    except requests.RequestException as exc:
        raise _Rejected("unreachable", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def price_value(raw: Any) -> Decimal:
    if isinstance(raw, bool) or raw is None or isinstance(raw, dict | list):
        raise _Rejected("garbage", f"price is not a number: {str(raw)[:60]!r}")
    try:
        price = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise _Rejected("garbage", f"price is not a number: {str(raw)[:60]!r}") from None
    if not price.is_finite():
        raise _Rejected("garbage", f"price is not a finite number: {str(raw)[:60]!r}")
    if price <= 0:
        raise _Rejected("non_positive", f"price {price} is not above zero")
    if price > _MAX_PRICE:
        raise _Rejected("garbage", f"price {price} is implausibly large")
    return price.quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN)


def ts_value(raw: Any, *, zone: ZoneInfo) -> tuple[datetime, bool]:
    """(aware datetime, date_only) from an epoch number, an ISO date or an ISO datetime."""
    if isinstance(raw, bool) or raw is None:
        raise _Rejected("garbage", f"timestamp missing or not a time: {raw!r}")
    text = str(raw).strip()
    try:
        if isinstance(raw, int | float) or text.replace(".", "", 1).isdigit() and len(text) >= 9:
            return datetime.fromtimestamp(float(text), tz=UTC), False
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=zone), True
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise _Rejected("garbage", f"timestamp is not a time: {text[:40]!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)), False


def _json_path(document: Any, path: list, day: date | None) -> Any:
    node = document
    for step in path:
        key = day.isoformat() if step == "{date}" and day is not None else step
        try:
            node = node[key]  # a str key into an object, an int index into a list; anything else is missing
        except (KeyError, IndexError, TypeError):
            raise _Rejected("missing", f"no {'/'.join(str(s) for s in path)} in the answer") from None
    return node


def _parse_json(body: bytes, config: dict, *, day: date | None, live: bool) -> tuple[Decimal, datetime, bool]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected("garbage", "answer is not JSON") from None
    zone = _zone(config)
    price_path = config.get("quote_price_path" if live else "price_path")
    ts_path = config.get("quote_ts_path" if live else "ts_path")
    if not isinstance(price_path, list):
        raise _Rejected("config", "no price path configured")
    price = price_value(_json_path(document, price_path, day))
    if isinstance(ts_path, list):
        ts, date_only = ts_value(_json_path(document, ts_path, day), zone=zone)
    elif day is not None:
        ts, date_only = datetime.combine(day, datetime.min.time(), tzinfo=zone), True
    else:
        raise _Rejected("config", "no timestamp path configured for live quotes")
    return price, ts, date_only


def _parse_csv(body: bytes, config: dict, *, day: date | None, live: bool) -> tuple[Decimal, datetime, bool]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Rejected("garbage", "answer is not UTF-8 text") from None
    price_col = str(config.get("price_column") or "Close")
    date_col = str(config.get("date_column") or "Date")
    time_col = str(config.get("time_column") or "")
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise _Rejected("garbage", f"answer is not CSV: {exc}") from None
    if not rows or price_col not in rows[0] or date_col not in rows[0]:
        raise _Rejected("garbage", f"answer is not CSV with {date_col} and {price_col} columns")
    if live:
        row = rows[-1]
    else:
        wanted = {day.isoformat(), day.strftime("%Y%m%d")} if day else set()
        matching = [r for r in rows if (r.get(date_col) or "").strip() in wanted]
        if not matching:
            raise _Rejected("missing", f"no row for {day} in the answer")
        row = matching[-1]
    price = price_value(row.get(price_col))
    stamp = (row.get(date_col) or "").strip()
    if len(stamp) == 8 and stamp.isdigit():
        stamp = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"
    if time_col and (row.get(time_col) or "").strip():
        stamp = f"{stamp}T{(row.get(time_col) or '').strip()}"
    ts, date_only = ts_value(stamp, zone=_zone(config))
    return price, ts, date_only


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body")) or b"<html" in head


def quote_fetch(spec: SourceSpec, *, symbol: str, day: date | None = None) -> Quote:
    """Ask one source: the close of `symbol` on `day`, or its live quote when `day` is None."""
    live = day is None
    template = spec.config.get("quote_url" if live else "close_url")
    started = time.monotonic()
    body = b""
    try:
        if spec.kind == "manual":
            raise _Rejected("config", "the manual source is entered by operators (set_close), not fetched")
        if not template:
            raise _Rejected("config", f"no {'quote_url' if live else 'close_url'} configured")
        url = url_render(str(template), symbol=symbol, day=day, config=spec.config)
        body = _body_get(url, timeout_s=spec.timeout_ms / 1000, headers=_headers(spec.config))
        if _looks_like_html(body):
            raise _Rejected("html", "answer is an HTML page, not data")
        parse = _parse_csv if spec.kind == "csv" else _parse_json
        price, ts, date_only = parse(body, spec.config, day=day, live=live)
    except _Rejected as rejected:
        return Quote(
            source=spec.name,
            symbol=symbol,
            payload_sha256=hashlib.sha256(body).hexdigest() if body else "",
            latency_ms=int((time.monotonic() - started) * 1000),
            reason=rejected.reason,
            detail=rejected.detail[:500],
            weight=spec.weight,
        )
    return Quote(
        source=spec.name,
        symbol=symbol,
        price=price,
        ts=ts,
        date_only=date_only,
        payload_sha256=hashlib.sha256(body).hexdigest(),
        latency_ms=int((time.monotonic() - started) * 1000),
        weight=spec.weight,
    )


def quotes_fetch_all(specs: list[SourceSpec], *, symbol: str, day: date | None = None, retries: int = 0) -> list[Quote]:
    """Ask every source at once, each in its own thread with its own timeout (and `retries` more tries
    on a timeout or an unreachable host). A source that hangs past its deadline is a `timeout` quote;
    its thread is left to its socket timeout, never waited for, so one slow source blocks nobody."""
    if not specs:
        return []

    def ask(spec: SourceSpec) -> Quote:
        quote = quote_fetch(spec, symbol=symbol, day=day)
        for attempt in range(retries):
            if quote.reason not in ("timeout", "unreachable"):
                break
            time.sleep(min(0.2 * 2**attempt, 2.0))  # backoff between the tries of this source only
            quote = quote_fetch(spec, symbol=symbol, day=day)
        return quote

    pool = ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix="price-source")
    try:
        futures = {spec.name: pool.submit(ask, spec) for spec in specs}
        quotes = []
        started = time.monotonic()
        for spec in specs:
            # Each source's own budget: its timeout per try (twice: connect + read), the backoff, a margin.
            budget = (spec.timeout_ms / 1000) * 2 * (retries + 1) + 0.5 * retries + 1.0
            remaining = max(0.0, budget - (time.monotonic() - started))
            try:
                quotes.append(futures[spec.name].result(timeout=remaining))
            except FutureTimeout:
                quotes.append(
                    Quote(
                        source=spec.name,
                        symbol=symbol,
                        latency_ms=int(budget * 1000),
                        reason="timeout",
                        detail=f"no answer within {budget:g} s",
                        weight=spec.weight,
                    )
                )
        return quotes
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
