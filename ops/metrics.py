"""Prometheus counters other code increments: in memory (per process), no database.

Other apps call:
    ops.metrics.bet_accepted(side)          # after a bet commits
    ops.metrics.bet_rejected(reason)        # a refused bet, with its error code
    ops.metrics.settlement_observed(seconds)  # wall time of one settlement

The breaker's shared per-minute count of refused bets is not kept here: bet_place records it
in the database itself (ops.counters.event_count_add), so refusals from every door count.

Under gunicorn the counters live in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode, set up by config/gunicorn.py) and `/metrics` sums them across
workers; the business gauges are read from the database at scrape time (ops.dashboard).
No label ever carries a user id, an email or a round code.
"""

import re

from prometheus_client import Counter, Histogram

from ops.kpi import settlement_duration_record

BETS_ACCEPTED = Counter("betting_bets_accepted", "Bets accepted, by side", ["side"])
BETS_REJECTED = Counter("betting_bets_rejected", "Bets refused, by error code", ["reason"])
SETTLEMENT_DURATION = Histogram(
    "betting_settlement_duration_seconds",
    "Wall time of one round settlement",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

_SIDES = {"UP", "DOWN"}
# Present from the first scrape (as 0) rather than appearing with the first bet.
for _side in sorted(_SIDES):
    BETS_ACCEPTED.labels(side=_side)
for _reason in ("emergency_stop", "circuit_breaker"):
    BETS_REJECTED.labels(reason=_reason)
_REASON = re.compile(r"[a-z][a-z0-9_]{0,39}")


def bet_accepted(side: str) -> None:
    BETS_ACCEPTED.labels(side=side if side in _SIDES else "other").inc()


def bet_rejected(reason: str) -> None:
    """Count a refused bet. `reason` is the stable error code (bounded label set), never user data."""
    label = reason if isinstance(reason, str) and _REASON.fullmatch(reason) else "other"
    BETS_REJECTED.labels(reason=label).inc()


def settlement_observed(seconds: float) -> None:
    SETTLEMENT_DURATION.observe(max(0.0, float(seconds)))
    settlement_duration_record(seconds)  # shared: the breaker's slow-settlement rule reads it
