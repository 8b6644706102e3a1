"""Payouts: claim a due withdrawal, send it through the payout adapter, record the custodian's answer.

Complete (pending -> external:withdrawals), fail and refund (pending -> user cash, the user emailed
after commit), resolve an unknown outcome with the custodian, and the batch that does it all
(`withdrawals_process`, run by the beat, the command and the admin's "process now").
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import approval_cancel_pending
from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.types import User
from ops.selectors import betting_halt
from withdrawals.adapters import COMPLETED, FAILED, PENDING, PayoutAdapter, payout_adapter_get
from withdrawals.exceptions import (
    InvalidTransition,
    PayoutInFlight,
    PayoutRejected,
    PayoutUnavailable,
    ProcessingHalted,
    WithdrawalNotFound,
)
from withdrawals.models import Withdrawal
from withdrawals.services.money import withdrawal_post_payout, withdrawal_post_refund
from withdrawals.services.withdrawals import withdrawal_locked

logger = logging.getLogger(__name__)

PROCESS_WITHDRAWAL = "withdrawals.process_withdrawal"
FAIL_WITHDRAWAL = "withdrawals.fail_withdrawal"

# The payout state machine. The worker never holds a row lock while it talks to the custodian, so
# every decision that matters is taken under the row lock, committed, and only then acted on:
#
#   QUEUED (approved) --claim: lock, re-check, PROCESSING + lease + send_started_at, commit--> send
#       send: tx hash -> COMPLETED | refused -> FAILED (refund) | unknown -> stays PROCESSING
#   PROCESSING whose lease ran out --claim: lock, re-check, fresh lease, commit--> ask `status`:
#       completed -> COMPLETED | failed -> FAILED | pending -> leave |
#       unknown -> lock, re-check the claim and the flag, send_started_at, commit --> send again (same reference)
#   staff "mark failed": QUEUED -> FAILED (refund; the worker's locked re-check then skips it);
#       PROCESSING (may be at the custodian) -> refused (payout_may_be_in_flight) and flagged needs_reconciliation
#   needs_reconciliation: never sent again; only the custodian's answer settles it (`withdrawal_resolve`, or the
#       next run once its lease is over): completed -> COMPLETED | failed -> FAILED | pending -> leave |
#       unknown WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS after its last send -> FAILED (refund) | unknown sooner -> leave
#
# At most one payout per withdrawal is the custodian's idempotency on `payout_reference` (a send again
# is the same payout); never both paid and refunded is the one release key, and that a refund of
# something that may be at the custodian happens only on the custodian's word.


@dataclass
class ProcessReport:
    claimed: int = 0
    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Resolution:
    """What asking the custodian settled: completed | failed | in_flight (pending, or unknown too recently
    sent to refund) | unsent (unknown and not flagged: the next run sends it, same reference)."""

    withdrawal: Withdrawal
    outcome: str
    custodian_state: str


@dataclass(frozen=True)
class _Claim:
    withdrawal_id: int
    attempt: int  # `attempts` after this claim: a later claim by another worker changes it
    resumed: bool  # it was PROCESSING already: it may be at the custodian, so ask before anything


def _halt_check() -> None:
    halt = betting_halt()
    if halt is not None and halt.code == "emergency_stop":
        raise ProcessingHalted(f"Withdrawal processing is stopped by the emergency stop: {halt.reason}")


def _approved_q() -> Q:
    approver = "second_approved_by" if settings.WITHDRAWAL_APPROVALS_REQUIRED >= 2 else "approved_by"
    return Q(needs_approval=False) | Q(**{f"{approver}__isnull": False})


def _lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=settings.WITHDRAWAL_PROCESSING_LEASE_SECONDS)


def _withdrawal_claim_next(*, withdrawal_ids: list[int] | None, exclude: set[int]) -> _Claim | None:
    """Claim the next due item in its own short transaction, immediately before it is worked on.

    Due: approved QUEUED (claimed AND marked as being sent, in one commit, so from this moment staff
    can no longer refund it), or PROCESSING whose lease ran out (resumed: nothing is sent before the
    custodian has been asked).
    """
    now = timezone.now()
    due = (Q(status=Withdrawal.Status.QUEUED) & _approved_q()) | Q(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now), status=Withdrawal.Status.PROCESSING
    )
    with transaction.atomic():
        rows = Withdrawal.objects.select_for_update(skip_locked=True).filter(due).exclude(pk__in=exclude)
        if withdrawal_ids is not None:
            rows = rows.filter(pk__in=withdrawal_ids)
        withdrawal = rows.order_by("id").first()
        if withdrawal is None:
            return None
        resumed = withdrawal.status == Withdrawal.Status.PROCESSING
        withdrawal.status = Withdrawal.Status.PROCESSING
        withdrawal.processing_started_at = withdrawal.processing_started_at or now
        withdrawal.lease_until = _lease_until()
        withdrawal.attempts += 1
        fields = ["status", "processing_started_at", "lease_until", "attempts", "updated_at"]
        if not resumed:
            withdrawal.send_started_at = now
            fields.append("send_started_at")
        withdrawal.save(update_fields=fields)
    return _Claim(withdrawal_id=withdrawal.pk, attempt=withdrawal.attempts, resumed=resumed)


def _withdrawal_mark_sending(claim: _Claim) -> Withdrawal | None:
    """Before sending a resumed item again: under the lock, is it still ours, still PROCESSING, and has
    nobody asked to stop it? Then commit the 'sending' marker. None: it must not be sent."""
    with transaction.atomic():
        withdrawal = withdrawal_locked(claim.withdrawal_id)
        if (
            withdrawal.status != Withdrawal.Status.PROCESSING
            or withdrawal.attempts != claim.attempt
            or withdrawal.needs_reconciliation
        ):
            return None
        withdrawal.send_started_at = timezone.now()
        withdrawal.lease_until = _lease_until()
        withdrawal.save(update_fields=["send_started_at", "lease_until", "updated_at"])
    return withdrawal


def withdrawal_complete(
    *, withdrawal_id: int, tx_hash: str, source: str, acting_user: User | None = None
) -> Withdrawal:
    """Record a payout that happened: pending -> external:withdrawals. Only from PROCESSING (flagged for
    reconciliation or not: the custodian paid it). The same tx hash again answers the completed row."""
    with transaction.atomic():
        withdrawal = withdrawal_locked(withdrawal_id)
        if withdrawal.status == Withdrawal.Status.COMPLETED and tx_hash and withdrawal.tx_hash == tx_hash:
            return withdrawal  # a second worker that resumed it recorded the same payout first
        if withdrawal.status != Withdrawal.Status.PROCESSING:
            raise InvalidTransition(f"Only a PROCESSING withdrawal can complete; this one is {withdrawal.status}.")
        withdrawal_post_payout(withdrawal=withdrawal, acting_user=acting_user)
        withdrawal.status = Withdrawal.Status.COMPLETED
        withdrawal.tx_hash = tx_hash
        withdrawal.lease_until = None
        withdrawal.needs_reconciliation = False
        withdrawal.finished_at = timezone.now()
        withdrawal.save(
            update_fields=["status", "tx_hash", "lease_until", "needs_reconciliation", "finished_at", "updated_at"]
        )
        audit_record(
            action=AuditAction.WITHDRAWAL_COMPLETE,
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            before={"status": Withdrawal.Status.PROCESSING},
            after={"status": withdrawal.status, "tx_hash": tx_hash, "payout_reference": withdrawal.reference},
        )
    return withdrawal


def _notify_failure(withdrawal: Withdrawal) -> None:
    send_mail(
        subject=f"Your withdrawal {withdrawal.pk} failed; the funds are back in your balance",
        message=(
            f"Your withdrawal of {withdrawal.amount_u} micro-USDC to {withdrawal.destination} could not be paid.\n"
            f"Reason: {withdrawal.failure_reason}\n"
            "The full amount has been returned to your cash balance."
        ),
        from_email=None,
        recipient_list=[withdrawal.user.email],
        fail_silently=True,
    )


def _withdrawal_refund(withdrawal: Withdrawal, *, reason: str, source: str, acting_user: User | None) -> Withdrawal:
    """Inside the caller's transaction, with the row locked: pending -> user cash, FAILED, email after commit."""
    before = withdrawal.status
    withdrawal_post_refund(withdrawal=withdrawal, acting_user=acting_user)
    withdrawal.status = Withdrawal.Status.FAILED
    withdrawal.failure_reason = reason
    withdrawal.lease_until = None
    withdrawal.needs_reconciliation = False
    withdrawal.finished_at = timezone.now()
    withdrawal.save(
        update_fields=["status", "failure_reason", "lease_until", "needs_reconciliation", "finished_at", "updated_at"]
    )
    audit_record(
        action=AuditAction.WITHDRAWAL_FAIL,
        source=source,
        actor=acting_user,
        object_type="withdrawal",
        object_id=withdrawal.pk,
        reason=reason,
        before={"status": before},
        after={"status": withdrawal.status, "payout_reference": withdrawal.reference},
    )
    approval_cancel_pending(kind=ApprovalRequest.Kind.WITHDRAWAL, target=withdrawal.pk, source=source, reason=reason)
    transaction.on_commit(lambda: _notify_failure(withdrawal))
    return withdrawal


def withdrawal_fail(
    *,
    withdrawal_id: int,
    reason: str,
    source: str,
    acting_user: User | None = None,
    payout_checked: bool = False,
) -> Withdrawal:
    """Fail and refund (pending -> user cash), record the reason, email the user after commit.

    Staff may fail a QUEUED withdrawal: nothing of it has gone out, and the worker's locked claim
    re-check will skip it. A PROCESSING one may be at the custodian right now, so staff are refused
    (PayoutInFlight, `payout_may_be_in_flight`) and it is flagged `needs_reconciliation` instead: it is
    never sent again, and the custodian's answer completes or refunds it (`withdrawal_resolve`).
    `payout_checked=True` is the processing code's own call, after the custodian refused the payout.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("A reason is required to fail a withdrawal.")
    if acting_user is not None:  # None: the processing code itself, or the shell
        permission_require(acting_user, FAIL_WITHDRAWAL, detail="You need the 'fail withdrawal' permission.")
    with transaction.atomic():
        withdrawal = withdrawal_locked(withdrawal_id)
        status = withdrawal.status
        if status == Withdrawal.Status.QUEUED or (status == Withdrawal.Status.PROCESSING and payout_checked):
            return _withdrawal_refund(withdrawal, reason=reason, source=source, acting_user=acting_user)
        if status != Withdrawal.Status.PROCESSING:
            raise InvalidTransition(f"Only a QUEUED or PROCESSING withdrawal can fail; this one is {status}.")
        # It may be at the custodian: a refund now could be a refund of something paid. Flag it, commit, refuse.
        first_request = not withdrawal.needs_reconciliation
        withdrawal.needs_reconciliation = True
        withdrawal.reconciliation_reason = reason
        withdrawal.save(update_fields=["needs_reconciliation", "reconciliation_reason", "updated_at"])
        audit_record(
            action=AuditAction.WITHDRAWAL_RECONCILE_REQUESTED,
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            reason=reason,
            before={"status": status, "needs_reconciliation": not first_request},
            after={"status": status, "needs_reconciliation": True, "payout_reference": withdrawal.reference},
        )
    raise PayoutInFlight(
        f"Withdrawal {withdrawal.pk} may already be at the payout service (reference {withdrawal.reference}); "
        "it was not refunded. It is flagged for reconciliation: it will not be sent again, and it is completed "
        "or refunded once the payout service says what became of it."
    )


def _withdrawal_note_error(withdrawal_id: int, error: str) -> None:
    Withdrawal.objects.filter(pk=withdrawal_id).update(last_error=error[:2000], updated_at=timezone.now())


def _withdrawal_settle_from_custodian(
    withdrawal: Withdrawal, *, adapter: PayoutAdapter, source: str, acting_user: User | None
) -> tuple[str, str]:
    """Ask the custodian about a PROCESSING withdrawal and act on its answer; (outcome, custodian state).

    Raises PayoutUnavailable when the custodian cannot be asked (nothing changes).
    """
    known = adapter.status(withdrawal.reference, withdrawal.tx_hash)
    if known.state == COMPLETED:
        withdrawal_complete(
            withdrawal_id=withdrawal.pk,
            tx_hash=known.tx_hash or withdrawal.tx_hash,
            source=source,
            acting_user=acting_user,
        )
        return "completed", known.state
    if known.state == FAILED:
        withdrawal_fail(
            withdrawal_id=withdrawal.pk,
            reason=known.reason or "the payout service reports the payout failed",
            source=source,
            acting_user=None,
            payout_checked=True,
        )
        return "failed", known.state
    if known.state == PENDING:
        return "in_flight", known.state
    # unknown: never received -- or a send that has not landed yet
    if not withdrawal.needs_reconciliation:
        return "unsent", known.state
    window = timedelta(seconds=settings.WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS)
    with transaction.atomic():
        locked = withdrawal_locked(withdrawal.pk)
        last_send = locked.send_started_at or locked.processing_started_at
        if (
            locked.status != Withdrawal.Status.PROCESSING
            or locked.attempts != withdrawal.attempts
            or locked.send_started_at != withdrawal.send_started_at
            or (last_send is not None and last_send > timezone.now() - window)
        ):
            return "in_flight", known.state
        _withdrawal_refund(
            locked,
            reason=(
                f"The payout service has no record of payout {locked.reference} "
                f"{settings.WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS}s after it was last sent; refunded on "
                f"reconciliation (staff: {locked.reconciliation_reason or 'no reason given'})."
            ),
            source=source,
            acting_user=acting_user,
        )
    return "failed", known.state


def withdrawal_resolve(*, withdrawal_id: int, source: str, acting_user: User | None = None) -> Resolution:
    """Settle a PROCESSING withdrawal whose outcome is unknown by asking the custodian (status by payout
    reference): the only way such an item is completed or, if the custodian never paid it, refunded."""
    if acting_user is not None:  # None: the beat or the shell
        permission_require(acting_user, PROCESS_WITHDRAWAL, detail="You need the 'process withdrawal' permission.")
    withdrawal = Withdrawal.objects.filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    if withdrawal.status != Withdrawal.Status.PROCESSING:
        raise InvalidTransition(
            f"Only a PROCESSING withdrawal is resolved with the payout service; this one is {withdrawal.status}.",
            code="not_processing",
        )
    try:
        outcome, state = _withdrawal_settle_from_custodian(
            withdrawal, adapter=payout_adapter_get(), source=source, acting_user=acting_user
        )
    except PayoutUnavailable as exc:
        raise PayoutInFlight(
            f"Cannot ask the payout service about withdrawal {withdrawal.pk}: {exc}; nothing was changed.",
            code="payout_status_unavailable",
            status=503,
        ) from exc
    return Resolution(withdrawal=Withdrawal.objects.get(pk=withdrawal.pk), outcome=outcome, custodian_state=state)


def _withdrawal_pay(claim: _Claim, *, source: str, acting_user: User | None) -> str:
    """Work one claimed item: a resumed one asks the custodian first, so it is never paid twice."""
    adapter = payout_adapter_get()
    withdrawal = Withdrawal.objects.get(pk=claim.withdrawal_id)
    try:
        if claim.resumed:
            outcome, _ = _withdrawal_settle_from_custodian(
                withdrawal, adapter=adapter, source=source, acting_user=acting_user
            )
            if outcome != "unsent":
                return outcome
            # the custodian never got it: send now, under the same reference, if the claim still holds
            sending = _withdrawal_mark_sending(claim)
            if sending is None:
                return "in_flight"
            withdrawal = sending
        tx_hash = adapter.send(withdrawal.destination, withdrawal.amount_u, withdrawal.reference)
    except PayoutRejected as exc:
        withdrawal_fail(withdrawal_id=claim.withdrawal_id, reason=str(exc), source=source, payout_checked=True)
        return "failed"
    except PayoutUnavailable as exc:
        _withdrawal_note_error(claim.withdrawal_id, str(exc))
        return "in_flight"
    withdrawal_complete(withdrawal_id=claim.withdrawal_id, tx_hash=tx_hash, source=source, acting_user=acting_user)
    return "completed"


def withdrawals_process(
    *,
    limit: int | None = None,
    withdrawal_ids: list[int] | None = None,
    source: str = "beat",
    acting_user: User | None = None,
    reason: str = "",
) -> ProcessReport:
    """Pay due withdrawals through the payout adapter, one claimed item at a time (see the state machine
    above). Safe to run twice and side by side (skip-locked claims, re-checked before each send).

    Refused while the emergency stop is on. A worker that dies between the payout and its record
    leaves the item PROCESSING; after its lease the next run asks `status` first. Items flagged for
    reconciliation are settled here too, on the custodian's answer only.
    """
    if acting_user is not None:  # None: the beat or the shell
        permission_require(acting_user, PROCESS_WITHDRAWAL, detail="You need the 'process withdrawal' permission.")
    _halt_check()
    report = ProcessReport()
    limit = limit or settings.WITHDRAWAL_BATCH_SIZE
    seen: set[int] = set()  # each item at most once per run, even with a lease of 0
    try:
        while len(seen) < limit:
            _halt_check()
            claim = _withdrawal_claim_next(withdrawal_ids=withdrawal_ids, exclude=seen)
            if claim is None:
                break
            seen.add(claim.withdrawal_id)
            report.claimed += 1
            try:
                outcome = _withdrawal_pay(claim, source=source, acting_user=acting_user)
            except ProcessingHalted:
                raise
            except Exception as exc:  # one bad item must not stop the batch; it stays PROCESSING and is resumed
                logger.exception("withdrawal %s: processing error", claim.withdrawal_id)
                _withdrawal_note_error(claim.withdrawal_id, f"{exc.__class__.__name__}: {exc}")
                report.errors.append(claim.withdrawal_id)
                continue
            bucket = {"completed": report.completed, "failed": report.failed, "in_flight": report.in_flight}
            bucket[outcome].append(claim.withdrawal_id)
    finally:
        if withdrawal_ids is not None:  # a manual "process now": one audit row with who, why and what was taken
            with transaction.atomic():
                audit_record(
                    action=AuditAction.WITHDRAWAL_PROCESS_NOW,
                    source=source,
                    actor=acting_user,
                    object_type="withdrawal",
                    object_id=",".join(str(pk) for pk in withdrawal_ids)[:128],
                    reason=reason,
                    after={"claimed": sorted(seen)},
                )
    return report
