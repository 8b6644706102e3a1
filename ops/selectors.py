"""Reads of the ops tables: the halt and maintenance checks on the hot path, switches, heartbeats, alerts, counts.

Other apps call `betting_halt` and `maintenance_get` on every bet, request and task, so this
module reads only ops' own tables and imports no other app.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from ops.models import Alert, EventCount, Heartbeat, OpsSwitch


@dataclass(frozen=True)
class Halt:
    code: str  # "emergency_stop" or "circuit_breaker"
    reason: str


# The switches that are on, read once for a whole web request (ops.maintenance.MaintenanceMiddleware):
# name -> (reason, changed_at). None outside a request: every call reads the table.
_request_switches: ContextVar[dict[str, tuple[str, datetime | None]] | None] = ContextVar(
    "request_switches", default=None
)


# This process's last read of the switches (monotonic time, what switches_on read), for reads that may
# take it while it is younger than their max_age (a GET's maintenance check).
_switches_seen: tuple[float, dict[str, tuple[str, datetime | None]]] | None = None


def switches_on(*, max_age: float = 0.0) -> dict[str, tuple[str, datetime | None]]:
    """The switches that are on: name -> (reason, changed_at). One query.

    With `max_age` (seconds): this process's last read instead, if it is younger. The maintenance
    check of a GET asks so (settings.SWITCHES_READ_MAX_AGE_SECONDS): a read changes nothing, so a
    GET served within that second of maintenance going on elsewhere is harmless (a restore waits
    RESTORE_QUIET_SECONDS before it starts). Writes (a bet, a withdrawal) always read afresh, and a
    switch changed in this process is forgotten when it commits (switches_forget).
    """
    global _switches_seen
    seen = _switches_seen
    if max_age > 0 and seen is not None and time.monotonic() - seen[0] < max_age:
        return seen[1]
    on = {
        name: (reason, changed_at)
        for name, reason, changed_at in OpsSwitch.objects.filter(active=True).values_list(
            "name", "reason", "changed_at"
        )
    }
    _switches_seen = (time.monotonic(), on)
    return on


def switches_forget() -> None:
    """The next switches_on reads the table, whatever max_age it is given."""
    global _switches_seen
    _switches_seen = None


@contextmanager
def switches_remembered(on: dict[str, tuple[str, datetime | None]]) -> Iterator[None]:
    """Within the block, maintenance_get and betting_halt answer from `on` (switches_on, read once).

    For one web request: the maintenance check and a bet's halt check then cost one query between
    them. A switch turned on while the request runs is honoured from the next request, as a switch
    turned on just after a bet's check always was.
    """
    token = _request_switches.set(on)
    try:
        yield
    finally:
        _request_switches.reset(token)


def betting_halt() -> Halt | None:
    """Why betting (and withdrawal processing) must stop now, or None.

    On the hot path of every bet: one indexed query, or none inside switches_remembered. The
    emergency stop wins over the breaker when both are on. Maintenance is not a halt: bettors
    never reach a service in maintenance (the API answers 503), and the operator's own commands
    must keep working while it is on.
    """
    on = _request_switches.get()
    if on is not None:
        for name in (OpsSwitch.Name.EMERGENCY_STOP, OpsSwitch.Name.CIRCUIT_BREAKER):
            if name in on:
                return Halt(code=name, reason=on[name][0])
        return None
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
    """The maintenance switch when it is on, else None: one query on the unique `name` index, no cache
    (none inside switches_remembered: read once at the start of the request).

    Every web process, worker and beat task asks this on each request / run, so a process
    honours a switch made on another host at its next write or task (a GET within
    SWITCHES_READ_MAX_AGE_SECONDS: ops.maintenance).
    """
    on = _request_switches.get()
    if on is not None:
        found = on.get(OpsSwitch.Name.MAINTENANCE)
        return Maintenance(reason=found[0], since=found[1]) if found else None
    row = (
        OpsSwitch.objects.filter(name=OpsSwitch.Name.MAINTENANCE, active=True)
        .values_list("reason", "changed_at")
        .first()
    )
    return Maintenance(reason=row[0], since=row[1]) if row else None


def switch_get(*, name: str) -> OpsSwitch:
    """The switch row, or an unsaved inactive one when it was never switched."""
    return OpsSwitch.objects.filter(name=name).select_related("changed_by").first() or OpsSwitch(name=name)


def switch_reason_if_active(*, name: str) -> str | None:
    """The reason of the switch when it is on, else None."""
    return OpsSwitch.objects.filter(name=name, active=True).values_list("reason", flat=True).first()


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


def event_count_total(*, name: str, since: datetime) -> int:
    """Σ of the per-minute counter `name` from the minute of `since` on."""
    minute = since.replace(second=0, microsecond=0)
    return EventCount.objects.filter(name=name, minute__gte=minute).aggregate(total=Sum("count"))["total"] or 0


def alerts_open() -> QuerySet[Alert]:
    return Alert.objects.filter(status=Alert.Status.OPEN).order_by("severity", "-last_seen_at")


def ops_tables() -> dict[str, str]:
    return {"switches": OpsSwitch._meta.db_table}


def ops_last_writes() -> dict[str, datetime | None]:
    """{"table.column": latest stamp}: turning maintenance on starts the restore's quiet clock (not the heartbeat:
    it holds no data)."""
    return {
        f"{OpsSwitch._meta.db_table}.changed_at": OpsSwitch.objects.aggregate(at=Max("changed_at"))["at"],
        f"{Alert._meta.db_table}.last_seen_at": Alert.objects.aggregate(at=Max("last_seen_at"))["at"],
    }


# --- The terminal dashboard's ops panels (ops.terminal): one statement each, on small tables ---


@dataclass(frozen=True)
class SwitchState:
    name: str
    active: bool
    reason: str
    rule: str  # the breaker rule that tripped, if automatic
    changed_at: datetime | None
    changed_by: str  # the staff account's email, "" when none is recorded


def switches_board() -> list[SwitchState]:
    """Every switch, on or off, with its reason and who switched it last (a never-switched one is off)."""
    rows = {
        row.name: row
        for row in OpsSwitch.objects.select_related("changed_by").only(
            "name", "active", "reason", "rule", "changed_at", "changed_by__email"
        )
    }
    states = []
    for name in OpsSwitch.Name.values:
        row = rows.get(name)
        states.append(
            SwitchState(
                name=name,
                active=bool(row and row.active),
                reason=row.reason if row else "",
                rule=row.rule if row else "",
                changed_at=row.changed_at if row else None,
                changed_by=row.changed_by.email if row and row.changed_by else "",
            )
        )
    return states


@dataclass(frozen=True)
class OpenAlert:
    key: str
    severity: str
    summary: str
    first_seen_at: datetime
    last_seen_at: datetime


def alerts_open_board() -> list[OpenAlert]:
    """The open alerts, P0 first and newest first within a severity (one per condition: a few rows)."""
    return [
        OpenAlert(**row) for row in alerts_open().values("key", "severity", "summary", "first_seen_at", "last_seen_at")
    ]


def heartbeats_all() -> dict[str, datetime]:
    """{process name: its last heartbeat} of every process that ever beat ("beat", workers)."""
    return dict(Heartbeat.objects.order_by("name").values_list("name", "beat_at"))


def database_connections_use() -> tuple[int, int] | None:
    """(client connections open to this database server, the most it allows us), PostgreSQL only.

    The most is OPS_KPI_DB_POOL_MAX when set (the app's own pool budget), else max_connections less the
    superuser reserve. None on SQLite (no server, no pool).
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
            "current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        )
        used, most = cursor.fetchone()
    return int(used), int(settings.OPS_KPI_DB_POOL_MAX or most)
