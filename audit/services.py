"""The one writer of the audit log."""

from typing import Any

from django.db import transaction

from audit.models import AuditEvent


def audit_record(
    *,
    action: str,
    source: str,
    actor: Any = None,
    object_type: str = "",
    object_id: Any = "",
    reason: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Write the audit row inside the caller's transaction, so it commits or rolls back with the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return AuditEvent.objects.create(
        action=action,
        source=source,
        actor=actor if getattr(actor, "pk", None) else None,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        before=before,
        after=after,
    )
