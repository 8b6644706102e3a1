"""The one writer of the audit log."""

import getpass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.models import AuditEvent
from common.sql import rows_insert


def os_user() -> str:
    """The operating-system user running this process ("os:<name>"), for actions taken at the shell."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "os:unknown"


def _who(*, action: str, source: str, actor: Any, what: str) -> tuple[Any, str]:
    """The rules every audit row is written under, and who it names: (the Django user or None, the label).

    Inside the caller's transaction only; `action` one of AuditAction; the label is the user's email,
    or for a command-line action without one, the OS user that ran it.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{what} must run inside the transaction of the change it records")
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is not an audit action (audit.events.AuditAction)")
    person = actor if getattr(actor, "pk", None) else None
    if person is not None:
        return person, person.email
    return None, os_user() if source == AuditEvent.Source.CLI else ""


def audit_record(
    *,
    action: str,
    source: str,
    actor: Any = None,
    object_type: str = "",
    object_id: Any = "",
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write the audit row inside the caller's transaction, so it commits or rolls back with the change.

    `action` must be one of `AuditAction`. The actor is the Django user when there is one; a
    command-line action without one records the OS user that ran it.
    """
    person, label = _who(action=action, source=source, actor=actor, what="audit_record")
    return AuditEvent.objects.create(
        action=action,
        source=source,
        actor=person,
        actor_label=label,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        before=before,
        after=after,
    )


def audit_record_many(
    *,
    action: str,
    source: str,
    actor: Any = None,
    object_type: str = "",
    events: list[tuple[Any, dict[str, Any]]],
    reason: str = "",
) -> None:
    """Many rows of one action at once (seed's deposits): one INSERT, the same rules as audit_record.

    `events`: (object_id, after) per row; actor, source, object type and reason are shared.
    """
    person, label = _who(action=action, source=source, actor=actor, what="audit_record_many")
    now = timezone.now()
    rows_insert(
        AuditEvent,
        ["actor", "actor_label", "action", "object_type", "object_id", "reason", "before", "after", "source", "ts"],
        [
            (person.pk if person is not None else None, label, action, object_type, str(object_id), reason, None,
             after, source, now)
            for object_id, after in events
        ],
    )  # fmt: skip
