"""Four eyes, once: a staff user asks (`approval_request`), another approves (`approval_grant`).

The rooms call these from their own services and execute the approved act in the transaction of
the deciding approval, so an approval and its effect commit together or not at all:

- withdrawals: a held withdrawal (`withdrawal_request`, `withdrawal_approve`);
- rounds: a manual UP / DOWN result (`round_result_request`, `round_result_approve`);
- ledger: a manual credit / debit above FOUR_EYES_THRESHOLD_U (`ledger_manual_adjust`);
- ops: lifting the circuit breaker and a restore (`circuit_breaker_reset`, `restore`).

The rules: the requester and the person whose money it is never approve; a person approves a
request once; a request expires (APPROVAL_EXPIRY_SECONDS unless the room gives its own); every
request and approval is audited.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.exceptions import ApprovalNotFound, ApprovalNotPending, ApprovalPending, ApprovalRefused
from approvals.models import ApprovalRequest, ApprovalVote
from audit.events import AuditAction
from audit.services import audit_record, os_user
from common.errors import ReasonRequired, permission_require
from common.types import User


def _person(actor: Any) -> User | None:
    return actor if getattr(actor, "pk", None) else None


def _audit(
    *, action: AuditAction, request: ApprovalRequest, actor: Any, source: str, reason: str, **after: Any
) -> None:
    audit_record(
        action=action,
        source=source,
        actor=actor,
        object_type="approval_request",
        object_id=request.pk,
        reason=reason,
        after={"kind": request.kind, "target": request.target, "status": request.status, **after},
    )


def _expire_stale(*, kind: str, target: str, now: Any) -> None:
    stale = ApprovalRequest.objects.filter(
        kind=kind, target=target, status=ApprovalRequest.Status.PENDING, expires_at__lte=now
    )
    stale.update(status=ApprovalRequest.Status.EXPIRED, decided_at=now)


def approval_request(
    *,
    kind: str,
    target: str,
    payload: dict[str, Any],
    reason: str,
    actor: User | None,
    source: str,
    subject_user: User | None = None,
    approvals_required: int = 1,
    ttl_seconds: int | None = None,
) -> tuple[ApprovalRequest, bool]:
    """Record that `actor` asks for `payload` to be done to `target`: (request, created).

    The same request again (same kind, target and payload, still pending) answers the first one;
    another payload for a target that already waits is refused (`approval_pending`). The caller
    has checked the requester's permission.
    """
    if kind not in ApprovalRequest.Kind.values:
        raise ValueError(f"{kind!r} is not an approval kind")
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("A request for a second person's approval needs a reason.")
    target = str(target)
    now = timezone.now()
    with transaction.atomic():
        _expire_stale(kind=kind, target=target, now=now)
        waiting = ApprovalRequest.objects.select_for_update().filter(
            kind=kind, target=target, status=ApprovalRequest.Status.PENDING
        )
        earlier = waiting.first()
        if earlier is not None:
            if earlier.payload == payload:
                return earlier, False
            raise ApprovalPending(
                f"Request {earlier.pk} ({earlier.kind} {earlier.target}) waits for approval already; "
                "approve it or let it expire first."
            )
        person = _person(actor)
        request = ApprovalRequest.objects.create(
            kind=kind,
            target=target,
            payload=payload,
            reason=reason,
            requested_by=person,
            requested_label=person.email if person else (os_user() if source == "cli" else source),
            subject_user=_person(subject_user),
            approvals_required=approvals_required,
            source=source,
            expires_at=now + timedelta(seconds=ttl_seconds or settings.APPROVAL_EXPIRY_SECONDS),
        )
        _audit(
            action=AuditAction.APPROVAL_REQUEST,
            request=request,
            actor=actor,
            source=source,
            reason=reason,
            payload=payload,
            expires_at=request.expires_at.isoformat(),
        )
    return request, True


def approval_grant(
    *, request_id: Any, kind: str, permission: str, actor: User | None, source: str, reason: str = ""
) -> ApprovalRequest:
    """`actor` approves request `request_id` of `kind`; returns it, APPROVED once enough people have.

    Run it inside the transaction that then executes the approved act (when the returned
    request is APPROVED), so the approval is undone if the act is refused. Refusals:
    `approver_required` (no named person), `permission_denied`, `approval_not_found`,
    `not_pending`, `approval_expired`, `own_request`, `same_approver`.
    """
    if _person(actor) is None:
        raise ApprovalRefused(
            "An approval must name its person (the admin, an API token, or --actor on a command).",
            code="approver_required",
        )
    approver = permission_require(actor, permission, detail=f"Approving this needs the '{permission}' permission.")
    text = str(request_id).strip()
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise ApprovalNotFound(f"No approval request {request_id!r}.")
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=int(text), kind=kind).first()
        if request is None:
            raise ApprovalNotFound(f"No {kind} approval request {text}.")
        if request.status == ApprovalRequest.Status.APPROVED:
            raise ApprovalNotPending(f"Request {request.pk} is already approved.", code="already_approved")
        if request.status != ApprovalRequest.Status.PENDING:
            raise ApprovalNotPending(f"Request {request.pk} is {request.status}; nothing to approve.")
        now = timezone.now()
        if request.expires_at <= now:
            raise ApprovalNotPending(
                f"Request {request.pk} expired at {request.expires_at.isoformat()}; ask again.",
                code="approval_expired",
            )
        if approver.pk in (request.requested_by_id, request.subject_user_id):
            raise ApprovalRefused("You cannot approve a request you made or that moves your own money.")
        if request.votes.filter(approver=approver).exists():
            raise ApprovalRefused("The next approval must come from another staff user.", code="same_approver")
        ApprovalVote.objects.create(request=request, approver=approver, reason=reason or "")
        votes = request.votes.count()
        if votes >= request.approvals_required:
            request.status = ApprovalRequest.Status.APPROVED
            request.decided_at = now
            request.save(update_fields=["status", "decided_at"])
        _audit(
            action=AuditAction.APPROVAL_GRANT,
            request=request,
            actor=approver,
            source=source,
            reason=reason,
            approvals=votes,
            required=request.approvals_required,
        )
    return request


def approval_cancel_pending(
    *, kind: str, target: str | int, source: str, reason: str, actor: User | None = None
) -> int:
    """Cancel what waits for `target` (the withdrawal was cancelled, the breaker closed otherwise): count."""
    with transaction.atomic():
        cancelled = 0
        for request in ApprovalRequest.objects.select_for_update().filter(
            kind=kind, target=str(target), status=ApprovalRequest.Status.PENDING
        ):
            request.status = ApprovalRequest.Status.CANCELLED
            request.decided_at = timezone.now()
            request.save(update_fields=["status", "decided_at"])
            _audit(action=AuditAction.APPROVAL_CANCEL, request=request, actor=actor, source=source, reason=reason)
            cancelled += 1
    return cancelled


def approval_reason(request: ApprovalRequest, approver: Any) -> str:
    """The reason the executed act records: the request's, with who asked and who approved."""
    return f"{request.reason} (requested by {request.requested_label}, approved by {getattr(approver, 'email', '')})"


def approvals_expire(*, source: str = "beat") -> int:
    """Mark every pending request past its expiry EXPIRED, audited; the count (the beat, every minute)."""
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            ApprovalRequest.objects.select_for_update().filter(
                status=ApprovalRequest.Status.PENDING, expires_at__lte=now
            )
        )
        for request in stale:
            request.status = ApprovalRequest.Status.EXPIRED
            request.decided_at = now
            request.save(update_fields=["status", "decided_at"])
            _audit(action=AuditAction.APPROVAL_EXPIRE, request=request, actor=None, source=source, reason="expired")
    return len(stale)
