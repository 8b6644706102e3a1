"""Reads for operations: the halt and maintenance checks on the hot path, switch state, heartbeat age."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from ops.models import Heartbeat, OpsSwitch


@dataclass(frozen=True)
class Halt:
    code: str  # "emergency_stop" or "circuit_breaker"
    reason: str


def betting_halt() -> Halt | None:
    """Why betting (and withdrawal processing) must stop now, or None.

    On the hot path of every bet: one indexed query. The emergency stop wins over the
    breaker when both are on ("emergency_stop" sorts after "circuit_breaker"). Maintenance is
    not a halt: bettors never reach a service in maintenance (the API answers 503), and the
    operator's own commands must keep working while it is on.
    """
    halts = [OpsSwitch.Name.EMERGENCY_STOP, OpsSwitch.Name.CIRCUIT_BREAKER]
    row = OpsSwitch.objects.filter(active=True, name__in=halts).order_by("-name").values_list("name", "reason").first()
    if row is None:
        return None
    return Halt(code=row[0], reason=row[1])


@dataclass(frozen=True)
class Maintenance:
    reason: str
    since: datetime | None


def maintenance_get() -> Maintenance | None:
    """The maintenance switch when it is on, else None: one query on the unique `name` index, no cache.

    Every web process, worker and beat task asks this on each request / run, so a process
    honours a switch made on another host at its next request, with no lag to wait out.
    """
    row = (
        OpsSwitch.objects.filter(name=OpsSwitch.Name.MAINTENANCE, active=True)
        .values_list("reason", "changed_at")
        .first()
    )
    return Maintenance(reason=row[0], since=row[1]) if row else None


def switch_get(*, name: str) -> OpsSwitch:
    """The switch row, or an unsaved inactive one when it was never switched."""
    return OpsSwitch.objects.filter(name=name).select_related("changed_by").first() or OpsSwitch(name=name)


def switches_active() -> dict[str, bool]:
    active = set(OpsSwitch.objects.filter(active=True).values_list("name", flat=True))
    return {name: name in active for name in OpsSwitch.Name.values}


def heartbeat_at(*, name: str = "beat") -> datetime | None:
    return Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()


def heartbeat_age_seconds(*, name: str = "beat", now: datetime | None = None) -> float | None:
    """Seconds since the last heartbeat, or None when there never was one."""
    beat_at = heartbeat_at(name=name)
    if beat_at is None:
        return None
    return max(0.0, ((now or timezone.now()) - beat_at).total_seconds())


def dashboard_round():
    """The round bettors see (rounds.selectors.round_current), else the latest settled one."""
    from rounds.models import Round
    from rounds.selectors import round_current

    return round_current() or Round.objects.order_by("-code").first()


def ledger_unbalanced_batches() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT batch FROM ledger_entries GROUP BY batch HAVING SUM(amount_u) != 0) t"
        )
        return cursor.fetchone()[0]


def alerts_open():
    from ops.models import Alert

    return Alert.objects.filter(status=Alert.Status.OPEN).order_by("severity", "-last_seen_at")


def dashboard_numbers() -> dict:
    """Everything the metrics scrape and the admin dashboard show, from a handful of aggregate queries."""
    from ledger.selectors import tvl_get

    switches = switches_active()
    return {
        "tvl": tvl_get(),
        "round": dashboard_round(),
        "emergency_stop": switches[OpsSwitch.Name.EMERGENCY_STOP],
        "circuit_breaker": switches[OpsSwitch.Name.CIRCUIT_BREAKER],
        "maintenance": switches[OpsSwitch.Name.MAINTENANCE],
        "unbalanced_batches": ledger_unbalanced_batches(),
        "heartbeat_age_seconds": heartbeat_age_seconds(),
        "alerts_open": alerts_open().count(),
    }
