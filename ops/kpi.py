"""The manual's KPIs, counted where every web process sees them: bucketed counters in the Django cache.

A leaf of ops (Django's cache only), like ops.counters and ops.metrics. `KpiMiddleware` counts every
API response (5xx and a latency histogram) in this process and adds the counts to the shared
cache (Redis in production, config.settings.production) at most every OPS_KPI_FLUSH_SECONDS and
whenever a 10-second bucket ends: no database write and no cache round trip per request. The
breaker and alert rules (ops.rules) read the sum over their window with one `get_many`.
`settlement_duration_record` keeps the last settlement's duration there too.
"""

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 10
# Latency histogram bounds (ms); 500 is the manual's threshold, so "p95 > 500 ms" is exact.
LATENCY_BOUNDS_MS = (25, 50, 100, 250, 500, 1000, 2500)
_KEYS = ("requests", "5xx", *(f"le{bound}" for bound in LATENCY_BOUNDS_MS))
SETTLEMENT_KEY = "kpi:settlement:last"

_lock = threading.Lock()
_pending: Counter[str] = Counter()
_pending_bucket = 0
_flushed_at = 0.0


def _key(bucket: int, name: str) -> str:
    return f"kpi:{bucket}:{name}"


def _flush(bucket: int, counts: Counter[str]) -> None:
    """Add this process's counts to the shared bucket. A cache outage loses counts, never a request."""
    timeout = settings.OPS_KPI_WINDOW_SECONDS + 2 * BUCKET_SECONDS
    try:
        for name, count in counts.items():
            key = _key(bucket, name)
            try:
                cache.incr(key, count)
            except ValueError:  # the first count of this bucket anywhere
                if not cache.add(key, count, timeout=timeout):
                    cache.incr(key, count)
    except Exception:  # noqa: BLE001 - the cache is down: the request must still answer
        logger.warning("KPI counters not written to the cache", exc_info=True)


def kpi_request_record(*, status: int, seconds: float, now: float | None = None) -> None:
    """Count one API response: its status class and its latency bucket (in memory; flushed as above)."""
    global _pending_bucket, _flushed_at
    now = time.time() if now is None else now
    bucket = int(now) // BUCKET_SECONDS
    milliseconds = seconds * 1000
    to_flush: list[tuple[int, Counter[str]]] = []
    with _lock:
        if bucket != _pending_bucket and _pending:
            to_flush.append((_pending_bucket, _pending.copy()))
            _pending.clear()
        _pending_bucket = bucket
        _pending["requests"] += 1
        if status >= 500:
            _pending["5xx"] += 1
        for bound in LATENCY_BOUNDS_MS:
            if milliseconds <= bound:
                _pending[f"le{bound}"] += 1
                break
        if now - _flushed_at >= settings.OPS_KPI_FLUSH_SECONDS:
            to_flush.append((bucket, _pending.copy()))
            _pending.clear()
            _flushed_at = now
    for flush_bucket, counts in to_flush:  # outside the lock: a slow cache must not serialise requests
        _flush(flush_bucket, counts)


@dataclass(frozen=True)
class ApiKpis:
    requests: int
    errors: int
    at_most_ms: dict[int, int]  # requests answered within each bound (not cumulative)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def share_within(self, bound_ms: int) -> float:
        within = sum(count for bound, count in self.at_most_ms.items() if bound <= bound_ms)
        return within / self.requests if self.requests else 1.0

    @property
    def p95_ms(self) -> int | None:
        """The histogram bound the 95th percentile falls under (None: beyond the last bound, or no requests)."""
        if not self.requests:
            return None
        for bound in LATENCY_BOUNDS_MS:
            if self.share_within(bound) >= 0.95:
                return bound
        return None


def api_kpis(*, window_seconds: int, now: float | None = None) -> ApiKpis:
    """The shared counts of the last `window_seconds` (whole buckets), from every web process."""
    now = time.time() if now is None else now
    last = int(now) // BUCKET_SECONDS
    buckets = range(last - window_seconds // BUCKET_SECONDS + 1, last + 1)
    found: dict[str, Any] = cache.get_many([_key(bucket, name) for bucket in buckets for name in _KEYS])
    totals: Counter[str] = Counter()
    for key, value in found.items():
        totals[key.rsplit(":", 1)[1]] += int(value)
    return ApiKpis(
        requests=totals["requests"],
        errors=totals["5xx"],
        at_most_ms={bound: totals[f"le{bound}"] for bound in LATENCY_BOUNDS_MS},
    )


def settlement_duration_record(seconds: float, *, at: float | None = None) -> None:
    try:
        cache.set(SETTLEMENT_KEY, {"seconds": float(seconds), "at": time.time() if at is None else at}, 2 * 86400)
    except Exception:  # noqa: BLE001 - never fail a committed settlement over a cache
        logger.warning("settlement duration not written to the cache", exc_info=True)


def settlement_duration_last() -> dict[str, float] | None:
    return cache.get(SETTLEMENT_KEY)


class KpiMiddleware:
    """Times every /api/ request (after maintenance: its 503s are not errors) and counts it (see above)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        kpi_request_record(status=response.status_code, seconds=time.monotonic() - started)
        return response
