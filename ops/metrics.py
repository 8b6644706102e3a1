"""Prometheus metrics: counters other code increments, and business gauges computed at scrape time.

Other apps call:
    ops.metrics.bet_accepted(side)          # after a bet commits
    ops.metrics.bet_rejected(reason)        # a refused bet, with its error code; call it OUTSIDE the
                                            # failed transaction (e.g. in the API view), since it also
                                            # adds to the shared per-minute count the breaker reads
    ops.metrics.settlement_observed(seconds)  # wall time of one settlement

Under gunicorn the counters live in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode, set up by config/gunicorn.py) and `/metrics` sums them across
workers. Business gauges are not per process: they are read from the database by
`BusinessCollector` on every scrape, so any worker answers with the same numbers.
No label ever carries a user id, an email or a round code.
"""

import logging
import os
import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

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
    try:
        from ops.services import event_count_add

        event_count_add(name="bet_rejected")
    except Exception:  # noqa: BLE001 - counting must never break the bettor's response
        logger.exception("could not record a rejected bet for the circuit breaker")


def settlement_observed(seconds: float) -> None:
    SETTLEMENT_DURATION.observe(max(0.0, float(seconds)))


class BusinessCollector:
    """Gauges read from the database at scrape time (cheap aggregate queries)."""

    def collect(self):
        from ops.selectors import dashboard_numbers

        numbers = dashboard_numbers()
        tvl = numbers["tvl"]
        for prefix in ("betting_tvl", "tvl"):
            for name, value, help_text in (
                ("locked_u", tvl.locked_u, "Money in open/locked round pools (micro-USDC)"),
                ("cash_u", tvl.cash_u, "Users' cash balances (micro-USDC)"),
                ("pending_withdrawals_u", tvl.pending_withdrawals_u, "Queued withdrawals (micro-USDC)"),
            ):
                yield GaugeMetricFamily(f"{prefix}_{name}", help_text, value=value)
        status = GaugeMetricFamily(
            "betting_round_status", "1 for the current round's state, 0 for the others", labels=["state"]
        )
        current = numbers["round"]
        for state in ("OPEN", "LOCKED", "SETTLED"):
            status.add_metric([state], 1 if current and current.status == state else 0)
        yield status
        pools = GaugeMetricFamily("betting_round_pool_u", "Current round pool per side (micro-USDC)", labels=["side"])
        pools.add_metric(["UP"], current.up_pool_u if current else 0)
        pools.add_metric(["DOWN"], current.down_pool_u if current else 0)
        yield pools
        yield GaugeMetricFamily(
            "betting_emergency_stop_active", "1 while the emergency stop is on", value=int(numbers["emergency_stop"])
        )
        yield GaugeMetricFamily(
            "betting_circuit_breaker_open", "1 while the circuit breaker is open", value=int(numbers["circuit_breaker"])
        )
        yield GaugeMetricFamily(
            "ops_maintenance_active",
            "1 while maintenance mode is on (API 503, beat tasks skip)",
            value=int(numbers["maintenance"]),
        )
        yield GaugeMetricFamily(
            "betting_ledger_unbalanced_batches",
            "Ledger batches whose entries do not sum to zero (must be 0)",
            value=numbers["unbalanced_batches"],
        )
        age = numbers["heartbeat_age_seconds"]
        yield GaugeMetricFamily(
            "betting_beat_heartbeat_age_seconds",
            "Seconds since the beat's last heartbeat (-1: never)",
            value=-1 if age is None else age,
        )
        yield GaugeMetricFamily("betting_alerts_open", "Open alerts", value=numbers["alerts_open"])


def metrics_text() -> bytes:
    """The whole exposition: process metrics (summed over workers in multiprocess mode) + business gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        process_text = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        process_text = generate_latest(REGISTRY)
    business = CollectorRegistry(auto_describe=False)
    business.register(BusinessCollector())
    return process_text + generate_latest(business)
