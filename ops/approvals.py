"""One door to approve any four-eyes request (the admin's "Approve" action): each kind goes to its room.

The rule itself is `approvals.services.approval_grant`; the room's approve service executes the act
in the same transaction. A restore is approved only from the `restore` command (it replaces the
database, so it runs in its own process with its file at hand).
"""

from typing import Any

from approvals.exceptions import ApprovalError
from approvals.models import ApprovalRequest
from common.types import User
from ledger.services import ledger_manual_adjust_approve
from ops.services import circuit_breaker_reset_approve
from rounds.services import round_result_approve
from withdrawals.services import withdrawal_approve


def approval_approve(*, request: ApprovalRequest, actor: User | None, source: str, reason: str = "") -> Any:
    """Approve `request` as `actor` through the room that owns its act; returns what that room returns."""
    if request.kind == ApprovalRequest.Kind.WITHDRAWAL:
        return withdrawal_approve(withdrawal_id=int(request.target), acting_user=actor, source=source, reason=reason)
    if request.kind == ApprovalRequest.Kind.ROUND_RESULT:
        return round_result_approve(request_id=request.pk, acting_user=actor, source=source, reason=reason)
    if request.kind == ApprovalRequest.Kind.LEDGER_ADJUST:
        return ledger_manual_adjust_approve(request_id=request.pk, acting_user=actor, source=source)
    if request.kind == ApprovalRequest.Kind.BREAKER_RESET:
        return circuit_breaker_reset_approve(request_id=request.pk, actor=actor, source=source)
    raise ApprovalError(
        f"Approve request {request.pk} with `restore FILE --confirm-loss SHA --approve {request.pk} --actor EMAIL`.",
        code="approve_from_command",
    )
