"""The alert and circuit-breaker rules: read-only functions over selectors. They write nothing.

A rule is one small function of `now`. An alert rule returns the Findings it sees (ops.alerts
raises and resolves the alerts); a breaker rule returns a Trip or None (ops.services opens
the breaker). Both sets read overdue rounds from one selector, rounds.selectors.rounds_overdue.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from betting.selectors import bet_stakes_top, bets_count
from ledger.selectors import house_totals_u, ledger_audit
from ops.models import OpsSwitch
from ops.selectors import event_count_total, heartbeat_age_seconds, switch_reason_if_active
from rounds.selectors import rounds_open_pools_u, rounds_overdue, rounds_voided_by_hand
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


# --- alert rules ---------------------------------------------------------------------------------


def alert_settlement_overdue(now: datetime) -> list[Finding]:
    return [
        Finding(f"settlement_overdue:{row.code}", "P1", f"Round {row.code} is still LOCKED past settle_at + grace.")
        for row in rounds_overdue(now=now)
    ]


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


def _switch_finding(name: str, severity: str, text: str) -> list[Finding]:
    reason = switch_reason_if_active(name=name)
    return [] if reason is None else [Finding(name, severity, f"{text}: {reason}")]


def alert_emergency_stop(now: datetime) -> list[Finding]:
    return _switch_finding(OpsSwitch.Name.EMERGENCY_STOP, "P1", "Emergency stop is ON")


def alert_breaker_open(now: datetime) -> list[Finding]:
    return _switch_finding(OpsSwitch.Name.CIRCUIT_BREAKER, "P1", "Circuit breaker is OPEN")


def alert_maintenance(now: datetime) -> list[Finding]:
    return [maintenance_finding(reason)] if (reason := switch_reason_if_active(name=OpsSwitch.Name.MAINTENANCE)) else []


def maintenance_finding(reason: str) -> Finding:
    """Also raised by ops_maintenance itself: every task, the alert task too, skips while maintenance is on."""
    return Finding(OpsSwitch.Name.MAINTENANCE, "P2", f"Maintenance mode is ON: {reason}")


def alert_withdrawal_backlog(now: datetime) -> list[Finding]:
    waiting = withdrawals_waiting_count(
        created_before=now - timedelta(seconds=settings.ALERT_WITHDRAWAL_BACKLOG_SECONDS)
    )
    if not waiting:
        return []
    return [Finding("withdrawal_backlog", "P2", f"{waiting} withdrawal(s) waiting longer than the backlog limit.")]


def alert_withdrawal_failure_burst(now: datetime) -> list[Finding]:
    failed = withdrawals_failed_count(since=now - timedelta(hours=1))
    if failed < settings.ALERT_WITHDRAWAL_FAILURE_BURST:
        return []
    return [Finding("withdrawal_failure_burst", "P1", f"{failed} withdrawals failed in the last hour.")]


def alert_beat_stale(now: datetime) -> list[Finding]:
    age = heartbeat_age_seconds(now=now)
    if age is not None and age <= settings.OPS_HEARTBEAT_STALE_SECONDS:
        return []
    text = "no beat heartbeat recorded" if age is None else f"beat heartbeat is {int(age)} s old"
    return [Finding("beat_stale", "P1", f"Scheduler (beat) looks down: {text}.")]


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


ALERT_RULES: list[Callable[[datetime], list[Finding]]] = [
    alert_settlement_overdue,
    alert_auto_no_close,
    alert_ledger_imbalance,
    alert_emergency_stop,
    alert_breaker_open,
    alert_maintenance,
    alert_withdrawal_backlog,
    alert_withdrawal_failure_burst,
    alert_beat_stale,
    alert_emergency_void,
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
    """One bettor holding most of a sizeable open pool looks like manipulation or a runaway client."""
    pools = {
        code: pool_u
        for code, pool_u in rounds_open_pools_u().items()
        if pool_u >= settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U
    }
    if not pools:
        return None
    for code, _user_id, staked_u in bet_stakes_top(round_codes=list(pools), limit=20):
        share = staked_u / pools[code]
        if share > settings.OPS_BREAKER_STAKE_SHARE:
            return Trip(
                "unusual_betting",
                f"one bettor holds {share:.0%} of round {code}'s pool (limit {settings.OPS_BREAKER_STAKE_SHARE:.0%})",
            )
    return None


BREAKER_RULES: list[Callable[[datetime], Trip | None]] = [
    breaker_ledger_audit,
    breaker_settlement_overdue,
    breaker_house_loss,
    breaker_withdrawal_failures,
    breaker_bet_rejections,
    breaker_unusual_betting,
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
