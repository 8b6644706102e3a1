"""The alert and circuit-breaker rules: read-only functions over selectors. They write nothing.

A rule is one small function of `now`. An alert rule returns the Findings it sees (ops.alerts
raises and resolves the alerts); a breaker rule returns a Trip or None (ops.services opens
the breaker). Both sets read overdue rounds from one selector, rounds.selectors.rounds_overdue.

Where a rule judges a number (a heartbeat's age, a bettor's share of a pool, a count of failed
withdrawals), the judgement is its own small function of that number (`*_findings`, `*_trip`), so
the terminal dashboard (ops.terminal) colours its panels by the very same thresholds from the
numbers it has already read: one definition, no copy.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from betting.selectors import bets_count
from ledger.selectors import house_totals_u, ledger_audit
from marketdata.selectors import close_failures, feed_status
from ops.kpi import LATENCY_BOUNDS_MS, api_kpis, settlement_duration_last
from ops.models import Alert, OpsSwitch
from ops.selectors import database_connections_use, event_count_total, heartbeat_age_seconds, switch_reason_if_active
from risk.exposure import exposure_concerns
from rounds.selectors import rounds_awaiting_close, rounds_overdue, rounds_voided_by_hand
from withdrawals.selectors import withdrawals_failed_count, withdrawals_finished_counts, withdrawals_waiting_count

logger = logging.getLogger(__name__)

# The per-minute counter bet_place adds to for each refused bet (ops.counters.event_count_add).
BET_REJECTED = "bet_rejected"


@dataclass(frozen=True)
class Finding:
    key: str
    severity: str
    summary: str

    @property
    def rule(self) -> str:
        return self.key.split(":", 1)[0]


@dataclass(frozen=True)
class Trip:
    rule: str
    reason: str
    severity: str = "P1"


# --- the manual's KPIs (seeds/000 "Key Performance Indicators", severities from "Incident Response") --------


@dataclass(frozen=True)
class KpiReading:
    """One KPI now: its value, its limit, whether it is over, and the manual's severity when it is."""

    rule: str
    label: str
    value: str
    limit: str
    over: bool
    severity: str
    reason: str = ""


def kpi_readings(now: datetime) -> list[KpiReading]:
    """5xx rate (P1: "API degradation, high error rates"), p95 latency (P2: "slow responses"), database
    connections (P1: database connection trouble ahead) and the last settlement's duration (P1: settlement
    latency, "oracle investigation"). Read from the shared cache counters and the database server."""
    window = settings.OPS_KPI_WINDOW_SECONDS
    api = api_kpis(window_seconds=window, now=now.timestamp())
    enough = api.requests >= settings.OPS_KPI_MIN_REQUESTS
    readings = []
    rate_limit = settings.OPS_KPI_ERROR_RATE
    readings.append(
        KpiReading(
            "api_error_rate",
            f"API 5xx rate ({window // 60} min)",
            f"{api.error_rate:.2%} of {api.requests}",
            f"> {rate_limit:.0%}",
            enough and api.error_rate > rate_limit,
            "P1",
            f"{api.errors} of {api.requests} API responses were 5xx in {window} s "
            f"({api.error_rate:.1%} > {rate_limit:.0%})",
        )
    )
    p95_limit = settings.OPS_KPI_P95_MS
    slow = api.requests and api.share_within(p95_limit) < 0.95
    p95_text = "-" if not api.requests else (f"≤ {api.p95_ms} ms" if api.p95_ms else f"> {LATENCY_BOUNDS_MS[-1]} ms")
    readings.append(
        KpiReading(
            "api_latency",
            f"API p95 latency ({window // 60} min)",
            p95_text,
            f"> {p95_limit} ms",
            bool(enough and slow),
            "P2",
            f"p95 API latency above {p95_limit} ms: {1 - api.share_within(p95_limit):.1%} of {api.requests} "
            f"responses took longer in {window} s",
        )
    )
    pool = database_connections_use()
    if pool is not None:
        used, most = pool
        use = used / most if most else 0.0
        readings.append(
            KpiReading(
                "db_pool",
                "Database connections",
                f"{used} of {most} ({use:.0%})",
                f"> {settings.OPS_KPI_DB_POOL_USE:.0%}",
                use > settings.OPS_KPI_DB_POOL_USE,
                "P1",
                f"{used} of {most} database connections in use ({use:.0%} > {settings.OPS_KPI_DB_POOL_USE:.0%})",
            )
        )
    last = settlement_duration_last()
    recent = last is not None and now.timestamp() - last["at"] <= 86400
    seconds = last["seconds"] if last is not None else 0.0
    readings.append(
        KpiReading(
            "settlement_slow",
            "Last settlement (24 h)",
            f"{seconds:.1f} s" if recent else "-",
            f"> {settings.OPS_KPI_SETTLEMENT_SECONDS:.0f} s",
            bool(recent and seconds > settings.OPS_KPI_SETTLEMENT_SECONDS),
            "P1",
            f"the last settlement took {seconds:.1f} s (> {settings.OPS_KPI_SETTLEMENT_SECONDS:.0f} s)",
        )
    )
    return readings


def alert_kpis(now: datetime) -> list[Finding]:
    return [Finding(f"kpi:{r.rule}", r.severity, f"KPI {r.label}: {r.reason}") for r in kpi_readings(now) if r.over]


def breaker_kpis(now: datetime) -> Trip | None:
    """The first KPI over its limit opens the breaker, with its reason and severity."""
    for reading in kpi_readings(now):
        if reading.over:
            return Trip(reading.rule, f"[{reading.severity}] {reading.reason}", reading.severity)
    return None


# --- alert rules ---------------------------------------------------------------------------------


# What each level of severity looks like on a screen: P0/P1 page someone (red), P2/P3 do not (amber).
LEVEL_OK, LEVEL_AMBER, LEVEL_RED = "ok", "amber", "red"
_SEVERITY_LEVEL = {"P0": LEVEL_RED, "P1": LEVEL_RED, "P2": LEVEL_AMBER, "P3": LEVEL_AMBER}


def severity_level(severity: str | None) -> str:
    return _SEVERITY_LEVEL.get(severity or "", LEVEL_OK)


def findings_level(findings: list[Finding]) -> str:
    """The level of the worst finding: what a panel showing these numbers turns."""
    return severity_level(min((finding.severity for finding in findings), default=None))


def settlement_overdue_findings(codes: list[str]) -> list[Finding]:
    return [
        Finding(f"settlement_overdue:{code}", "P1", f"Round {code} is still LOCKED past settle_at + grace.")
        for code in codes
    ]


def alert_settlement_overdue(now: datetime) -> list[Finding]:
    return settlement_overdue_findings([row.code for row in rounds_overdue(now=now)])


def alert_auto_no_close(now: datetime) -> list[Finding]:
    return [
        Finding(
            f"auto_no_close:{row.code}",
            "P1",
            f"AUTO settlement of round {row.code} found no accepted close: settle it by hand with a reason.",
        )
        for row in rounds_overdue(now=now)
        if row.marked
    ]


def oracle_no_quorum_finding(*, code: str, reason: str) -> Finding:
    """Also raised by round_settle the moment AUTO finds no quorum (rounds.services)."""
    return Finding(
        f"oracle_no_quorum:{code}",
        "P1",
        f"Round {code} stays LOCKED: the price sources gave no quorum ({reason}). "
        "Verify the close and enter it with set_close, or settle by hand with a reason.",
    )


def alert_oracle_no_quorum(now: datetime) -> list[Finding]:
    """A LOCKED round past settle_at whose latest quorum check of a close it needs found no quorum."""
    findings = []
    for code, symbol, day, previous in rounds_awaiting_close(now=now):
        failures = close_failures(keys=[(symbol, day), (symbol, previous)])
        if failures:
            reason = "; ".join(f"{key[1]:%Y-%m-%d}: {why}" for key, why in failures.items())
            findings.append(oracle_no_quorum_finding(code=code, reason=reason))
    return findings


def alert_ledger_imbalance(now: datetime) -> list[Finding]:
    report = ledger_audit()
    if report.ok:
        return []
    return [
        Finding(
            "ledger_imbalance",
            "P0",
            f"Ledger audit failed: {len(report.unbalanced_batches)} unbalanced batch(es), "
            f"{len(report.balance_mismatches)} cached balance mismatch(es).",
        )
    ]


# A switch that is on is an alert: (severity, what it says before the reason).
SWITCH_ALERTS = {
    OpsSwitch.Name.EMERGENCY_STOP: ("P1", "Emergency stop is ON"),
    OpsSwitch.Name.CIRCUIT_BREAKER: ("P1", "Circuit breaker is OPEN"),
    OpsSwitch.Name.MAINTENANCE: ("P2", "Maintenance mode is ON"),
}


def switch_findings(name: str, reason: str | None) -> list[Finding]:
    """The alert a switch raises while it is on (reason None: it is off)."""
    if reason is None:
        return []
    severity, text = SWITCH_ALERTS[OpsSwitch.Name(name)]
    return [Finding(name, severity, f"{text}: {reason}")]


def alert_emergency_stop(now: datetime) -> list[Finding]:
    name = OpsSwitch.Name.EMERGENCY_STOP
    return switch_findings(name, switch_reason_if_active(name=name))


def alert_breaker_open(now: datetime) -> list[Finding]:
    name = OpsSwitch.Name.CIRCUIT_BREAKER
    return switch_findings(name, switch_reason_if_active(name=name))


def alert_maintenance(now: datetime) -> list[Finding]:
    return [maintenance_finding(reason)] if (reason := switch_reason_if_active(name=OpsSwitch.Name.MAINTENANCE)) else []


def maintenance_finding(reason: str) -> Finding:
    """Also raised by ops_maintenance itself: every task, the alert task too, skips while maintenance is on."""
    return switch_findings(OpsSwitch.Name.MAINTENANCE, reason)[0]


def withdrawal_backlog_cutoff(now: datetime) -> datetime:
    """A withdrawal still waiting that was requested before this is backlog."""
    return now - timedelta(seconds=settings.ALERT_WITHDRAWAL_BACKLOG_SECONDS)


def withdrawal_backlog_findings(waiting: int) -> list[Finding]:
    """`waiting`: QUEUED or PROCESSING withdrawals requested before withdrawal_backlog_cutoff."""
    if not waiting:
        return []
    return [Finding("withdrawal_backlog", "P2", f"{waiting} withdrawal(s) waiting longer than the backlog limit.")]


def alert_withdrawal_backlog(now: datetime) -> list[Finding]:
    return withdrawal_backlog_findings(withdrawals_waiting_count(created_before=withdrawal_backlog_cutoff(now)))


WITHDRAWAL_FAILURE_WINDOW = timedelta(hours=1)


def withdrawal_failure_findings(failed: int) -> list[Finding]:
    """`failed`: withdrawals that ended FAILED within WITHDRAWAL_FAILURE_WINDOW."""
    if failed < settings.ALERT_WITHDRAWAL_FAILURE_BURST:
        return []
    return [Finding("withdrawal_failure_burst", "P1", f"{failed} withdrawals failed in the last hour.")]


def alert_withdrawal_failure_burst(now: datetime) -> list[Finding]:
    return withdrawal_failure_findings(withdrawals_failed_count(since=now - WITHDRAWAL_FAILURE_WINDOW))


def heartbeat_findings(age_seconds: float | None, *, name: str = "beat") -> list[Finding]:
    """A heartbeat older than OPS_HEARTBEAT_STALE_SECONDS (or none at all) means its process looks down."""
    if age_seconds is not None and age_seconds <= settings.OPS_HEARTBEAT_STALE_SECONDS:
        return []
    text = f"no {name} heartbeat recorded" if age_seconds is None else f"{name} heartbeat is {int(age_seconds)} s old"
    if name == "beat":
        return [Finding("beat_stale", "P1", f"Scheduler (beat) looks down: {text}.")]
    return [Finding(f"heartbeat_stale:{name}", "P1", f"{name} looks down: {text}.")]


def alert_beat_stale(now: datetime) -> list[Finding]:
    return heartbeat_findings(heartbeat_age_seconds(now=now))


def alert_exposure(now: datetime) -> list[Finding]:
    """risk.exposure's concerns: one bettor over the share of a side, a pool over the round pool cap."""
    return [
        Finding(
            f"exposure_{concern.rule}:{concern.round_code}", "P2", concern.text[:1].upper() + concern.text[1:] + "."
        )
        for concern in exposure_concerns(now=now)
    ]


def alert_price_feed_stale(now: datetime) -> list[Finding]:
    """In market hours, a symbol whose newest tick is older than the feed's target (marketdata.selectors)."""
    return [
        Finding(
            f"price_feed_stale:{s.symbol}",
            "P2",
            f"Price feed for {s.symbol} is stale: "
            + ("no tick yet" if s.age_seconds is None else f"newest tick {int(s.age_seconds)} s old")
            + f" (target {s.target_seconds} s).",
        )
        for s in feed_status(now=now).stale_symbols
    ]


def alert_price_source_down(now: datetime) -> list[Finding]:
    feed = feed_status(now=now)
    return [
        Finding(
            f"price_source_down:{s.name}",
            "P2",
            f"Price source {s.name} is down: {s.consecutive_failures} failure(s) in a row, last error: "
            f"{s.last_error or 'never answered'}.",
        )
        for s in feed.fetched_sources_enabled
        if not s.up
    ]


def alert_emergency_void(now: datetime) -> list[Finding]:
    """A round voided by one person (four eyes waived: a VOID refunds stakes only) is raised for a day."""
    return [
        Finding(
            f"emergency_void:{row.round.code}",
            "P1",
            f"Round {row.round.code} was VOIDED by hand by {row.settled_by.email if row.settled_by else row.source}"
            f" (emergency refund of {row.paid_out_u} u): {row.reason}",
        )
        for row in rounds_voided_by_hand(since=now - timedelta(hours=24))
    ]


RESTORE_ALERT_OPEN = timedelta(hours=24)


def alert_restore_recent(now: datetime) -> list[Finding]:
    """A restore's P0 (ops.backup raises it into the restored database) stays open for a day, so the next
    minute's evaluation does not resolve it the moment maintenance goes off."""
    rows = Alert.objects.filter(
        key__startswith="restore:", status=Alert.Status.OPEN, first_seen_at__gte=now - RESTORE_ALERT_OPEN
    )
    return [Finding(row.key, row.severity, row.summary) for row in rows]


ALERT_RULES: list[Callable[[datetime], list[Finding]]] = [
    alert_settlement_overdue,
    alert_auto_no_close,
    alert_oracle_no_quorum,
    alert_ledger_imbalance,
    alert_emergency_stop,
    alert_breaker_open,
    alert_maintenance,
    alert_withdrawal_backlog,
    alert_withdrawal_failure_burst,
    alert_beat_stale,
    alert_exposure,
    alert_price_feed_stale,
    alert_price_source_down,
    alert_emergency_void,
    alert_restore_recent,
    alert_kpis,
]


def alert_findings(*, now: datetime) -> list[Finding]:
    """What every alert rule finds now. One broken rule is logged and must not silence the others."""
    findings: list[Finding] = []
    for rule in ALERT_RULES:
        try:
            findings.extend(rule(now))
        except Exception:  # noqa: BLE001
            logger.exception("alert rule %s failed", rule.__name__)
    return findings


# --- circuit breaker rules -----------------------------------------------------------------------


def _window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.OPS_BREAKER_WINDOW_SECONDS)


def breaker_ledger_audit(now: datetime) -> Trip | None:
    report = ledger_audit()
    if report.ok:
        return None
    return Trip(
        "ledger_audit",
        f"ledger audit failed: {len(report.unbalanced_batches)} unbalanced batch(es), "
        f"{len(report.balance_mismatches)} balance mismatch(es), global sum {report.global_sum_u} u",
    )


def breaker_settlement_overdue(now: datetime) -> Trip | None:
    codes = [row.code for row in rounds_overdue(now=now)[:5]]
    if not codes:
        return None
    return Trip("settlement_overdue", f"round(s) {', '.join(codes)} still LOCKED past settle_at + grace")


def breaker_house_loss(now: datetime) -> Trip | None:
    net_u = house_totals_u(start=now - timedelta(hours=24)).net_u
    if -net_u <= settings.OPS_BREAKER_HOUSE_LOSS_U:
        return None
    return Trip("house_loss", f"house lost {-net_u} u in 24 h (limit {settings.OPS_BREAKER_HOUSE_LOSS_U} u)")


def breaker_withdrawal_failures(now: datetime) -> Trip | None:
    total, failed = withdrawals_finished_counts(since=_window_start(now))
    if total < settings.OPS_BREAKER_WITHDRAWAL_MIN_COUNT:
        return None
    if failed / total < settings.OPS_BREAKER_WITHDRAWAL_FAILURE_RATE:
        return None
    return Trip("withdrawal_failures", f"{failed} of {total} withdrawals failed in the window")


def breaker_bet_rejections(now: datetime) -> Trip | None:
    start = _window_start(now)
    rejected = event_count_total(name=BET_REJECTED, since=start)
    if rejected < settings.OPS_BREAKER_REJECTION_MIN_COUNT:
        return None
    accepted = bets_count(since=start)
    rate = rejected / (rejected + accepted)
    if rate < settings.OPS_BREAKER_REJECTION_RATE:
        return None
    return Trip("bet_rejections", f"{rejected} bets rejected vs {accepted} accepted in the window ({rate:.0%})")


def breaker_unusual_betting(now: datetime) -> Trip | None:
    """One bettor holding most of a side of a sizeable open pool looks like manipulation or a runaway client.

    The numbers are risk.exposure's (the admin page, `exposure --round` and the gauges show the same).
    """
    for concern in exposure_concerns(now=now):
        if concern.rule == "side_share":
            return Trip("unusual_betting", concern.text)
    return None


def breaker_no_price_source(now: datetime) -> Trip | None:
    """In market hours with a feed configured, not one enabled source healthy: prices cannot be trusted."""
    feed = feed_status(now=now)
    enabled = feed.fetched_sources_enabled
    if not feed.market_open or not enabled or any(s.up for s in enabled):
        return None
    return Trip("no_price_source", f"none of the {len(enabled)} enabled price source(s) is healthy in market hours")


BREAKER_RULES: list[Callable[[datetime], Trip | None]] = [
    breaker_ledger_audit,
    breaker_settlement_overdue,
    breaker_house_loss,
    breaker_withdrawal_failures,
    breaker_bet_rejections,
    breaker_unusual_betting,
    breaker_no_price_source,
    breaker_kpis,
]


def breaker_trips(*, now: datetime) -> list[Trip]:
    """Every breaker rule that trips now, in rule order."""
    return [trip for rule in BREAKER_RULES if (trip := rule(now)) is not None]


def breaker_first_trip(*, now: datetime) -> Trip | None:
    """The first rule that trips, running no rule after it."""
    for rule in BREAKER_RULES:
        trip = rule(now)
        if trip is not None:
            return trip
    return None
