"""The numbers the metrics scrape, the ops API and the admin dashboard show: reads over every app's selectors.

Business gauges are not per process: `BusinessCollector` reads them from the database on every
scrape, so any worker answers with the same numbers; `metrics_text` adds them to the process
counters of ops.metrics (summed over the gunicorn workers in multiprocess mode).
"""

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from ledger.selectors import ledger_unbalanced_batch_count, tvl_get
from marketdata.selectors import feed_status
from marketdata.sources import REJECT_REASONS
from ops import metrics  # noqa: F401 - registers the process counters this exposition includes
from ops.models import OpsSwitch
from ops.selectors import alerts_open, heartbeat_age_seconds, switches_active
from risk.exposure import round_exposure
from rounds.selectors import round_current, round_latest


def dashboard_numbers() -> dict:
    """Everything the metrics scrape and the admin dashboard show, from a handful of aggregate queries."""
    switches = switches_active()
    return {
        "tvl": tvl_get(),
        "round": round_current() or round_latest(),  # the round bettors see, else the latest one
        "emergency_stop": switches[OpsSwitch.Name.EMERGENCY_STOP],
        "circuit_breaker": switches[OpsSwitch.Name.CIRCUIT_BREAKER],
        "maintenance": switches[OpsSwitch.Name.MAINTENANCE],
        "unbalanced_batches": ledger_unbalanced_batch_count(),
        "heartbeat_age_seconds": heartbeat_age_seconds(),
        "alerts_open": alerts_open().count(),
    }


class BusinessCollector:
    """Gauges read from the database at scrape time (cheap aggregate queries)."""

    def collect(self):
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
        yield from exposure_gauges(current)
        yield from price_feed_metrics()


def exposure_gauges(current) -> list[GaugeMetricFamily]:
    """The current round's exposure (risk.exposure, the numbers the admin page and the breaker use), per side."""
    exposure = round_exposure(code=current.code, top=0, round_=current) if current is not None else None
    families = [
        ("risk_round_staked_u", "Current round: stakes per side (micro-USDC)", lambda s: s.staked_u),
        (
            "risk_round_worst_case_payout_u",
            "Current round: paid to bettors if this side wins, stakes included (micro-USDC)",
            lambda s: s.payout_if_wins_u,
        ),
        (
            "risk_round_house_if_wins_u",
            "Current round: fee + dust if this side wins (micro-USDC)",
            lambda s: s.house_if_wins_u,
        ),
    ]
    out = []
    for name, help_text, value in families:
        family = GaugeMetricFamily(name, help_text, labels=["side"])
        for side in ("UP", "DOWN"):
            family.add_metric([side], value(exposure.side(side)) if exposure else 0)
        out.append(family)
    share = GaugeMetricFamily(
        "risk_round_top_bettor_side_share",
        "Current round: the largest bettor's share of each side (0..1)",
        labels=["side"],
    )
    for side in ("UP", "DOWN"):
        share.add_metric([side], exposure.top_share_bps(side) / 10_000 if exposure else 0)
    out.append(share)
    return out


def price_feed_metrics():
    """The feed's freshness (marketdata.selectors.feed_status, the thresholds the alert rules use)."""
    feed = feed_status()
    age = GaugeMetricFamily(
        "betting_price_tick_age_seconds", "Seconds since the newest tick of a symbol (-1: never)", labels=["symbol"]
    )
    for symbol in feed.symbols:
        age.add_metric([symbol.symbol], -1 if symbol.age_seconds is None else symbol.age_seconds)
    yield age
    up = GaugeMetricFamily("betting_price_source_up", "1 while an enabled price source is healthy", labels=["source"])
    for source in feed.sources:
        if source.enabled:
            up.add_metric([source.name], int(source.up))
    yield up
    polled = GaugeMetricFamily(
        "betting_price_source_success_age_seconds",
        "Seconds since an enabled price source last answered a usable quote (-1: never)",
        labels=["source"],
    )
    for source in feed.sources:
        if source.enabled:
            age_s = None if source.last_success_at is None else (feed.now - source.last_success_at).total_seconds()
            polled.add_metric([source.name], -1 if age_s is None else max(0.0, age_s))
    yield polled
    rejected = CounterMetricFamily(
        "betting_price_quotes_rejected", "Quotes of price sources rejected, by reason", labels=["reason"]
    )
    totals = dict.fromkeys(REJECT_REASONS, 0)
    for source in feed.sources:
        for reason, count in source.rejected.items():
            key = reason if reason in totals else "other"
            totals[key] = totals.get(key, 0) + count
    for reason, count in sorted(totals.items()):
        rejected.add_metric([reason], count)
    yield rejected


def metrics_text() -> bytes:
    """The whole exposition: process metrics (summed over workers in multiprocess mode) + business gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        process_text = generate_latest(registry)
    else:
        process_text = generate_latest(REGISTRY)
    business = CollectorRegistry(auto_describe=False)
    business.register(BusinessCollector())
    return process_text + generate_latest(business)
