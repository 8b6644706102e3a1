"""Writes for operations: the switches, the breaker's opening, heartbeats and shared counters.

Every manual or automatic switch writes one audit row in its transaction and asks for an
alert evaluation once it commits. The rules that decide (ops.rules) only read; the state
changes they lead to are here and in ops.alerts.
"""

import contextlib
from datetime import datetime
from typing import Any

from celery import signature
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.exceptions import FourEyesRequired
from approvals.models import ApprovalRequest
from approvals.services import approval_grant, approval_reason, approval_request
from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.types import User
from ops.alerts import alert_raise
from ops.models import Heartbeat, OpsSwitch
from ops.rules import Trip, breaker_first_trip, maintenance_finding
from ops.selectors import switch_reason_if_active, switches_forget

CHANGE_OPS_SWITCH = "ops.change_opsswitch"


def ops_switch_authorize(
    *, actor: User | None, act: str = "Switching the emergency stop, the circuit breaker or maintenance"
) -> None:
    """A person who switches the emergency stop, the breaker or maintenance, or backs up or restores the
    database, needs `ops.change_opsswitch` (operator).

    The admin, the ops API and the commands all come through here. `actor` None is a caller with
    no Django user: the shell without --actor (`manage.py`, whose access is the authority; audited
    with the OS user), the ops token (a machine credential the operator configured; audited with
    source "ops-token") and the beat.
    """
    if actor is None:
        return
    permission_require(
        actor,
        CHANGE_OPS_SWITCH,
        detail=f"{act} needs the operator's permission.",
    )


def _switch_locked(name: str) -> OpsSwitch:
    OpsSwitch.objects.get_or_create(name=name)
    return OpsSwitch.objects.select_for_update().get(name=name)


def _switch_state(switch: OpsSwitch) -> dict[str, Any]:
    return {"active": switch.active, "reason": switch.reason, "rule": switch.rule}


def _switch_set(
    *,
    name: str,
    active: bool,
    reason: str,
    rule: str,
    actor: User | None,
    source: str,
    action: AuditAction,
) -> tuple[OpsSwitch, bool]:
    """Lock, check, change one switch; returns (switch, changed). A no-op switch writes nothing."""
    with transaction.atomic():
        switch = _switch_locked(name)
        if switch.active == active:
            return switch, False
        before = _switch_state(switch)
        switch.active = active
        switch.reason = reason
        switch.rule = rule
        switch.changed_at = timezone.now()
        switch.changed_by = actor if getattr(actor, "pk", None) else None
        switch.save()
        audit_record(
            action=action,
            source=source,
            actor=actor,
            object_type="ops_switch",
            object_id=name,
            reason=reason,
            before=before,
            after=_switch_state(switch),
        )
        transaction.on_commit(_alerts_soon)
        transaction.on_commit(switches_forget)  # this process's GETs see the change at once
    return switch, True


def _alerts_soon() -> None:
    """Evaluate alerts right after a switch commits, so the stop/breaker alert goes out now, not at the next beat."""
    # By name, not by importing ops.tasks: the tasks import these services, so an import back would
    # close a circle. A signature of a registered task still runs eagerly where tasks do.
    # Any failure (a broker hiccup) must not undo the switch; the beat catches up.
    with contextlib.suppress(Exception):
        signature("ops.evaluate_alerts").delay()


def ops_emergency_stop(
    *, active: bool, reason: str = "", actor: User | None = None, source: str
) -> tuple[OpsSwitch, bool]:
    """Switch the emergency stop on (a reason is required) or off. Bets and withdrawal processing halt while on."""
    ops_switch_authorize(actor=actor)  # before anything else: a refused person learns nothing more
    reason = (reason or "").strip()
    if active and not reason:
        raise ReasonRequired("Turning the emergency stop on needs a reason (--reason).")
    return _switch_set(
        name=OpsSwitch.Name.EMERGENCY_STOP,
        active=active,
        reason=reason,
        rule="",
        actor=actor,
        source=source,
        action=AuditAction.EMERGENCY_STOP_ON if active else AuditAction.EMERGENCY_STOP_OFF,
    )


def ops_maintenance(
    *, active: bool, reason: str = "", actor: User | None = None, source: str
) -> tuple[OpsSwitch, bool]:
    """Switch maintenance mode on (a reason is required) or off.

    While on, every web process answers the API with 503 `maintenance` and every beat task
    skips (ops.maintenance); `restore` runs only then. The operator's commands keep working.
    A staff actor needs the ops-switch permission; no actor is the operator at the shell.
    """
    ops_switch_authorize(actor=actor)
    reason = (reason or "").strip()
    if active and not reason:
        raise ReasonRequired("Turning maintenance on needs a reason (--reason).")
    with transaction.atomic():
        switch, changed = _switch_set(
            name=OpsSwitch.Name.MAINTENANCE,
            active=active,
            reason=reason,
            rule="",
            actor=actor,
            source=source,
            action=AuditAction.MAINTENANCE_ON if active else AuditAction.MAINTENANCE_OFF,
        )
        if changed and active:
            # Raised here, not by the alert task: every task (that one too) skips while maintenance is on.
            transaction.on_commit(lambda: alert_raise(finding=maintenance_finding(reason)))
    return switch, changed


def circuit_breaker_open(*, rule: str, reason: str, actor: User | None = None, source: str) -> tuple[OpsSwitch, bool]:
    """Open the breaker with the rule that tripped it; a breaker already open keeps its first reason."""
    ops_switch_authorize(actor=actor)  # before anything else: a refused person learns nothing more
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Opening the circuit breaker needs a reason.")
    return _switch_set(
        name=OpsSwitch.Name.CIRCUIT_BREAKER,
        active=True,
        reason=f"{rule}: {reason}" if rule else reason,
        rule=rule,
        actor=actor,
        source=source,
        action=AuditAction.CIRCUIT_BREAKER_OPEN,
    )


def circuit_breaker_reset(*, reason: str, actor: User | None = None, source: str) -> tuple[OpsSwitch, bool]:
    """Close the breaker, always with a reason.

    Four eyes: a named person (admin, an API user token, a command with --actor) cannot lift it
    alone: `circuit_breaker_reset_request`, then another operator's `circuit_breaker_reset_approve`.
    Without a person (the shell's own authority, the ops token) it closes at once, audited.
    """
    ops_switch_authorize(actor=actor)  # before anything else: a refused person learns nothing more
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Resetting the circuit breaker needs a reason (--reason).")
    if getattr(actor, "pk", None):
        raise FourEyesRequired(
            "Lifting the circuit breaker needs a second operator: request it, then another operator approves it."
        )
    return _breaker_close(reason=reason, actor=actor, source=source)


def _breaker_close(*, reason: str, actor: User | None, source: str) -> tuple[OpsSwitch, bool]:
    return _switch_set(
        name=OpsSwitch.Name.CIRCUIT_BREAKER,
        active=False,
        reason=reason,
        rule="",
        actor=actor,
        source=source,
        action=AuditAction.CIRCUIT_BREAKER_RESET,
    )


BREAKER_TARGET = OpsSwitch.Name.CIRCUIT_BREAKER.value


def circuit_breaker_reset_request(*, reason: str, actor: User | None, source: str) -> tuple[ApprovalRequest, bool]:
    """Ask to lift the open breaker: a four-eyes request (nothing changes until another operator approves)."""
    ops_switch_authorize(actor=actor)
    if switch_reason_if_active(name=OpsSwitch.Name.CIRCUIT_BREAKER) is None:
        raise FourEyesRequired("The circuit breaker is not open; there is nothing to lift.", code="breaker_not_open")
    return approval_request(
        kind=ApprovalRequest.Kind.BREAKER_RESET,
        target=BREAKER_TARGET,
        payload={},
        reason=reason,
        actor=actor,
        source=source,
    )


def circuit_breaker_reset_approve(*, request_id: Any, actor: User | None, source: str) -> tuple[OpsSwitch, bool]:
    """Another operator approves lifting the breaker: it closes in the same transaction, with the request's reason."""
    with transaction.atomic():
        request = approval_grant(
            request_id=request_id,
            kind=ApprovalRequest.Kind.BREAKER_RESET,
            permission=CHANGE_OPS_SWITCH,
            actor=actor,
            source=source,
        )
        if request.status != ApprovalRequest.Status.APPROVED:
            return _switch_locked(OpsSwitch.Name.CIRCUIT_BREAKER), False
        return _breaker_close(reason=approval_reason(request, actor), actor=actor, source=source)


def circuit_breaker_evaluate(
    *, now: datetime | None = None, source: str = "beat", actor: User | None = None
) -> Trip | None:
    """Run the breaker rules (ops.rules); open the breaker on the first trip. Returns the trip that opened it."""
    ops_switch_authorize(actor=actor)
    if switch_reason_if_active(name=OpsSwitch.Name.CIRCUIT_BREAKER) is not None:
        return None
    trip = breaker_first_trip(now=now or timezone.now())
    if trip is None:
        return None
    _, opened = circuit_breaker_open(rule=trip.rule, reason=trip.reason, actor=actor, source=source)
    return trip if opened else None


def heartbeat_beat(*, name: str = "beat", at: datetime | None = None) -> None:
    """Record that the beat (or another periodic process) is alive."""
    at = at or timezone.now()
    if not Heartbeat.objects.filter(name=name).update(beat_at=at):
        try:
            with transaction.atomic():
                Heartbeat.objects.create(name=name, beat_at=at)
        except IntegrityError:
            Heartbeat.objects.filter(name=name).update(beat_at=at)
