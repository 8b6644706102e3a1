"""Withdrawals out, up to the payout: request (user cash -> withdrawals:pending), cancel, approve (four-eyes)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import approval_pending_for
from approvals.services import approval_cancel_pending, approval_grant, approval_request
from audit.events import AuditAction
from audit.services import audit_record
from common.errors import permission_require
from common.idempotency import idempotency_key_validate, replay_check, request_digest
from common.types import User
from ledger.services import amount_validate
from withdrawals.exceptions import (
    DestinationRequired,
    InvalidTransition,
    WithdrawalLimitExceeded,
    WithdrawalNotFound,
)
from withdrawals.models import Withdrawal
from withdrawals.selectors import destination_default, payout_address_default, payout_address_find
from withdrawals.services.addresses import destination_validate, payout_address_record
from withdrawals.services.deposits import simulated_wallet_address
from withdrawals.services.money import (
    user_cash_ensure,
    user_cash_lock,
    withdrawal_post_refund,
    withdrawal_post_reserve,
)

REQUEST_WITHDRAWAL_ON_BEHALF = "withdrawals.request_withdrawal_on_behalf"
APPROVE_WITHDRAWAL = "withdrawals.approve_withdrawal"


def withdrawal_on_behalf_authorize(*, acting_user: User | None) -> None:
    """May `acting_user` move another user's cash out? Only staff with finance's permission.

    `is_staff` alone is not enough: the read-only auditor and the operator are staff too. The
    API calls this before it looks the user up; `withdrawal_request` calls it again for every door.
    """
    permission_require(
        acting_user,
        REQUEST_WITHDRAWAL_ON_BEHALF,
        detail="Withdrawing on behalf of another user needs the 'request withdrawal on behalf' permission.",
    )


def withdrawal_request_digest(*, user: User, amount_u: int, destination: str) -> str:
    """What "the same withdrawal request" means under one Idempotency-Key.

    A list, so `request_digest(compact=True)` (key order cannot matter) is
    byte for byte the `json.dumps([...], separators=(",", ":"))` digests stored before it existed:
    a retry of a request made before this definition moved to common still replays.
    """
    return request_digest([str(user.pk), amount_u, destination or ""], compact=True)


def _on_behalf_hold(*, user: User, destination: str, now: datetime) -> str:
    """Why a withdrawal someone else asked for must wait for a second person ("" = it need not)."""
    entry = payout_address_find(user=user, address=destination)
    if entry is None:
        return "destination is not in the user's address book"
    if entry.usable_from > now:
        return f"destination is in its cooling-off period until {entry.usable_from.isoformat()}"
    return ""


def withdrawal_request(
    *,
    user: User,
    amount_u: int,
    destination: str = "",
    source: str,
    acting_user: User | None = None,
    idempotency_key: str | None = None,
    from_shell: bool = False,
) -> tuple[Withdrawal, bool]:
    """Queue a withdrawal: user cash -> withdrawals:pending, in one batch. Returns (withdrawal, created).

    Who asks decides the rules:
    - the user themself (`acting_user` the user, or None from code acting as the user): paid to
      the address given (recorded in their address book) or, blank, their last payout address,
      else the address their last deposit came from, else (simulation only) their simulated wallet;
    - a staff user for another user: needs `withdrawals.request_withdrawal_on_behalf` (finance);
    - the operator at the shell (`from_shell=True`, `manage.py withdraw`): no Django user; access
      to the shell is the authority, so no permission is checked and nobody is `requested_by`.
    For the last two, a blank destination prefers the user's newest usable registered address,
    and the withdrawal waits for a second person's approval (four-eyes, whatever the amount)
    unless the destination is in the user's address book and past its cooling-off.
    Above WITHDRAWAL_APPROVAL_THRESHOLD_U every withdrawal waits for approval.

    With an `idempotency_key` the same request again returns the first withdrawal with
    created=False and moves nothing; the same key with another body is a 422.
    """
    on_behalf = from_shell or (acting_user is not None and acting_user.pk != user.pk)
    if on_behalf and not from_shell:
        withdrawal_on_behalf_authorize(acting_user=acting_user)
    amount_validate(amount_u)
    digest = ""
    if idempotency_key is not None:
        idempotency_key_validate(idempotency_key)
        digest = withdrawal_request_digest(user=user, amount_u=amount_u, destination=destination)
    if amount_u < settings.WITHDRAWAL_MIN_U:
        raise WithdrawalLimitExceeded(f"The minimum withdrawal is {settings.WITHDRAWAL_MIN_U} u.", code="below_minimum")
    if amount_u > settings.WITHDRAWAL_MAX_U:
        raise WithdrawalLimitExceeded(f"The maximum withdrawal per request is {settings.WITHDRAWAL_MAX_U} u.")
    named = bool(destination)
    if destination:
        destination = destination_validate(destination)
    else:
        destination = (payout_address_default(user=user) if on_behalf else "") or destination_default(user=user)
        if not destination and settings.SIMULATION_ENABLED:
            destination = simulated_wallet_address(user_id=user.pk)  # in simulation every bettor has a wallet
        if not destination:
            raise DestinationRequired(
                "A destination address (0x + 40 hex) is required: none is known for this user yet."
            )
    cash_code = user_cash_ensure(user=user)
    if getattr(acting_user, "pk", None):
        requester = acting_user
    else:
        requester = None if from_shell else user
    with transaction.atomic():
        # Serialise one user's requests so the daily limit holds under races.
        user_cash_lock(cash_code=cash_code)
        if idempotency_key is not None:
            earlier = Withdrawal.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if earlier is not None:
                replay_check(
                    key=idempotency_key, stored_digest=earlier.request_digest, digest=digest, what="withdrawal"
                )
                return earlier, False
        now = timezone.now()
        since = now - timedelta(hours=24)
        day_total_u = (
            Withdrawal.objects.filter(user=user, created_at__gte=since)
            .exclude(status__in=[Withdrawal.Status.CANCELLED, Withdrawal.Status.FAILED])
            .aggregate(total=Sum("amount_u"))["total"]
            or 0
        )
        if day_total_u + amount_u > settings.WITHDRAWAL_MAX_PER_DAY_U:
            raise WithdrawalLimitExceeded(
                f"This would take the last 24 h of withdrawals to {day_total_u + amount_u} u; "
                f"the daily limit is {settings.WITHDRAWAL_MAX_PER_DAY_U} u.",
                code="daily_limit",
            )
        held_because = _on_behalf_hold(user=user, destination=destination, now=now) if on_behalf else ""
        if amount_u > settings.WITHDRAWAL_APPROVAL_THRESHOLD_U:
            held_because = held_because or "amount is above the approval threshold"
        withdrawal = Withdrawal.objects.create(
            user=user,
            amount_u=amount_u,
            destination=destination,
            requested_by=requester,
            needs_approval=bool(held_because),
            idempotency_key=idempotency_key,
            request_digest=digest,
        )
        withdrawal_post_reserve(withdrawal=withdrawal, cash_code=cash_code, acting_user=acting_user)
        audit_record(
            action=AuditAction.WITHDRAWAL_REQUEST,
            source=source,
            actor=requester,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            after={
                "user": str(user.pk),
                "amount_u": amount_u,
                "destination": destination,
                "status": withdrawal.status,
                "needs_approval": withdrawal.needs_approval,
                **({"on_behalf": True} if on_behalf else {}),
                **({"held_because": held_because} if held_because else {}),
            },
        )
        if held_because:
            _approval_request(withdrawal=withdrawal, reason=held_because, source=source)
        if named and not on_behalf:
            # The user named this address in their own authenticated request: that is registering it.
            # Its cooling-off starts now; staff requests for the user may use it without approval later.
            payout_address_record(
                user=user, address=destination.lower(), source=source, via=f"withdrawal {withdrawal.pk}"
            )
    return withdrawal, True


def withdrawal_locked(withdrawal_id: int) -> Withdrawal:
    """The withdrawal, row-locked for the caller's transaction, or WithdrawalNotFound."""
    withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    return withdrawal


def withdrawal_cancel(*, withdrawal_id: int, user: User, source: str = "api") -> Withdrawal:
    """The bettor takes back a withdrawal that is still QUEUED: pending -> cash."""
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id, user=user).first()
        if withdrawal is None:
            raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
        if withdrawal.status != Withdrawal.Status.QUEUED:
            raise InvalidTransition(f"Only a QUEUED withdrawal can be cancelled; this one is {withdrawal.status}.")
        withdrawal_post_refund(withdrawal=withdrawal, acting_user=user)
        approval_cancel_pending(
            kind=ApprovalRequest.Kind.WITHDRAWAL, target=withdrawal.pk, source=source, reason="cancelled by the bettor"
        )
        withdrawal.status = Withdrawal.Status.CANCELLED
        withdrawal.finished_at = timezone.now()
        withdrawal.save(update_fields=["status", "finished_at", "updated_at"])
        audit_record(
            action=AuditAction.WITHDRAWAL_CANCEL,
            source=source,
            actor=user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            before={"status": Withdrawal.Status.QUEUED},
            after={"status": withdrawal.status},
        )
    return withdrawal


def withdrawal_is_approved(*, withdrawal: Withdrawal) -> bool:
    return not withdrawal.needs_approval or withdrawal.approvals >= settings.WITHDRAWAL_APPROVALS_REQUIRED


def _approval_request(*, withdrawal: Withdrawal, reason: str, source: str) -> ApprovalRequest:
    """The four-eyes request a held withdrawal waits on (approvals), asked by whoever requested it."""
    request, _ = approval_request(
        kind=ApprovalRequest.Kind.WITHDRAWAL,
        target=str(withdrawal.pk),
        payload={"amount_u": withdrawal.amount_u, "destination": withdrawal.destination},
        reason=reason,
        actor=withdrawal.requested_by,
        source=source,
        subject_user=withdrawal.user,
        approvals_required=settings.WITHDRAWAL_APPROVALS_REQUIRED,
        ttl_seconds=settings.WITHDRAWAL_APPROVAL_EXPIRY_SECONDS,
    )
    return request


def withdrawal_approve(
    *, withdrawal_id: int, acting_user: User | None, source: str = "admin", reason: str = ""
) -> Withdrawal:
    """Four-eyes through approvals: a staff user who neither owns nor requested it (nor approved it already).

    The rules are `approvals.services.approval_grant`'s; the withdrawal keeps who approved it
    (`approved_by`, `second_approved_by`) for the payout run and the admin.
    """
    # First, so a refused person learns nothing more (approval_grant checks it again, for every kind).
    permission_require(acting_user, APPROVE_WITHDRAWAL, detail="You need the 'approve withdrawal' permission.")
    with transaction.atomic():
        withdrawal = withdrawal_locked(withdrawal_id)
        if withdrawal.status != Withdrawal.Status.QUEUED or not withdrawal.needs_approval:
            raise InvalidTransition(
                f"Withdrawal {withdrawal.pk} does not wait for approval ({withdrawal.status}).", code="not_awaiting"
            )
        if withdrawal_is_approved(withdrawal=withdrawal):
            raise InvalidTransition(f"Withdrawal {withdrawal.pk} is already approved.", code="already_approved")
        # A withdrawal held before the approvals table existed gets its request now, in its requester's name.
        request = approval_pending_for(
            kind=ApprovalRequest.Kind.WITHDRAWAL, target=str(withdrawal.pk)
        ) or _approval_request(withdrawal=withdrawal, reason="held for approval", source=source)
        approval_grant(
            request_id=request.pk,
            kind=ApprovalRequest.Kind.WITHDRAWAL,
            permission=APPROVE_WITHDRAWAL,
            actor=acting_user,
            source=source,
            reason=reason,
        )
        assert acting_user is not None  # approval_grant refused anyone else
        now = timezone.now()
        if withdrawal.approved_by_id is None:
            withdrawal.approved_by, withdrawal.approved_at = acting_user, now
        else:
            withdrawal.second_approved_by, withdrawal.second_approved_at = acting_user, now
        withdrawal.save(
            update_fields=["approved_by", "approved_at", "second_approved_by", "second_approved_at", "updated_at"]
        )
        audit_record(
            action=AuditAction.WITHDRAWAL_APPROVE,
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            reason=reason,
            after={
                "approvals": withdrawal.approvals,
                "required": settings.WITHDRAWAL_APPROVALS_REQUIRED,
                "approval_request": request.pk,
            },
        )
    return withdrawal
