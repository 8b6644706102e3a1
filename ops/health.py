"""Readiness checks: each one small function returning a Check. `/health` runs them all."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from ops.migration_state import PENDING_CODE, migrations_pending
from ops.selectors import heartbeat_age_seconds
from rounds.selectors import round_last_settled, rounds_overdue


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    data: dict = field(default_factory=dict)
    starting: bool = False  # ok for now: the process has just started and this part has not reported yet


# When this (web) process started: the beat may not have beaten since (OPS_BEAT_STARTUP_GRACE_SECONDS).
PROCESS_STARTED_AT = timezone.now()


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return Check("database", False, f"{type(exc).__name__}: {exc}"[:200])
    return Check("database", True, connection.vendor)


def broker_url() -> str:
    return settings.CELERY_BROKER_URL or ""


def check_broker(*, timeout: float = 2.0) -> Check:
    url = broker_url()
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        return Check("broker", True, "memory")
    if scheme == "filesystem":
        # The embedded broker is a folder: it is up when we can write there.
        folder = Path((getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get("data_folder_in", ""))
        if folder and folder.is_dir() and os.access(folder, os.W_OK):
            return Check("broker", True, "filesystem")
        return Check("broker", False, f"filesystem broker folder {str(folder)!r} is missing or not writable")
    try:
        with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
            # kombu sleeps and times out on float seconds; celery-types' kombu stub declares int
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, f"{scheme} broker unreachable: {type(exc).__name__}")
    return Check("broker", True, scheme)


def check_beat(*, now=None) -> Check:
    now = now or timezone.now()
    age = heartbeat_age_seconds(now=now)
    limit = settings.OPS_HEARTBEAT_STALE_SECONDS
    since_start = (now - PROCESS_STARTED_AT).total_seconds()
    grace = settings.OPS_BEAT_STARTUP_GRACE_SECONDS
    beaten_since_start = age is not None and age <= since_start
    if not beaten_since_start and since_start < grace and (age is None or age > limit):
        # `make run` / a deploy: web answers before beat's first heartbeat. Not a failure yet.
        return Check(
            "beat",
            True,
            f"starting: no heartbeat since this process started {int(since_start)} s ago (grace {grace} s)",
            {"age_seconds": None if age is None else int(age)},
            starting=True,
        )
    if age is None:
        return Check("beat", False, "no beat heartbeat yet", {"age_seconds": None})
    if age > limit:
        return Check("beat", False, f"beat heartbeat is {int(age)} s old (limit {limit} s)", {"age_seconds": int(age)})
    return Check("beat", True, f"{int(age)} s ago", {"age_seconds": int(age)})


def check_settlement() -> Check:
    overdue = [row.code for row in rounds_overdue(now=timezone.now())[:5]]
    last = round_last_settled()
    data = {"last_settled": last, "overdue": overdue}
    if overdue:
        return Check("settlement", False, f"overdue: {', '.join(overdue)}", data)
    return Check("settlement", True, f"last settled {last['code']} {last['result']}" if last else "none yet", data)


def check_migrations() -> Check:
    """A process whose code needs migrations the database lacks says so, instead of a 500 on a missing column."""
    pending = migrations_pending()
    if pending:
        return Check(
            "migrations",
            False,
            f"{len(pending)} pending: {', '.join(pending)}",
            {"code": PENDING_CODE, "pending": pending},
        )
    return Check("migrations", True, "all applied", {"pending": []})


CHECKS = [check_database, check_broker, check_beat, check_settlement, check_migrations]


def health_report() -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, never a 500
            results.append(Check(check.__name__.removeprefix("check_"), False, f"{type(exc).__name__}"))
    return results
