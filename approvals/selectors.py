"""Reads of the four-eyes requests (the admin dashboard, the commands)."""

from django.db.models import Count, QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest


def approvals_pending() -> QuerySet[ApprovalRequest]:
    """Requests still waiting for a second person, oldest first, with their approval count."""
    return (
        ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, expires_at__gt=timezone.now())
        .select_related("requested_by", "subject_user")
        .annotate(approvals=Count("votes"))
        .order_by("created_at", "id")
    )


def approval_pending_for(*, kind: str, target: str) -> ApprovalRequest | None:
    return approvals_pending().filter(kind=kind, target=str(target)).first()
