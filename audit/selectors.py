"""Reads of the audit log."""

from datetime import datetime

from django.db.models import Max

from audit.models import AuditEvent


def audit_events_list(
    *, since: datetime, action_prefix: str = "", actor_email: str = "", limit: int = 1000
) -> list[AuditEvent]:
    """The audit log from `since` on, oldest first; optionally only actions starting with `action_prefix`, or
    only one staff email's."""
    events = AuditEvent.objects.filter(ts__gte=since).select_related("actor")
    if action_prefix:
        events = events.filter(action__startswith=action_prefix)
    if actor_email:
        events = events.filter(actor__email__iexact=actor_email)
    return list(events.order_by("ts", "id")[:limit])


def audit_actor_last(*, object_type: str, object_id: str) -> str | None:
    """Who made the latest audited change to one object (`AuditEvent.actor_name`), None when nothing was."""
    event = (
        AuditEvent.objects.filter(object_type=object_type, object_id=object_id)
        .select_related("actor")
        .order_by("-ts", "-id")
        .first()
    )
    return event.actor_name() if event is not None else None


def audit_last_writes() -> dict[str, datetime | None]:
    """{"table.column": latest stamp}: the restore's quiet clock."""
    return {f"{AuditEvent._meta.db_table}.ts": AuditEvent.objects.aggregate(at=Max("ts"))["at"]}
