"""Deposits in, withdrawals out. Every movement of money here is one `ledger_post`.

Withdrawal money path (one idempotency key per withdrawal for the way out of pending,
`withdrawal:<id>:release`, so a withdrawal can never be both paid and refunded):

    request:          user cash            -> withdrawals:pending
    complete:         withdrawals:pending  -> external:withdrawals
    fail / cancel:    withdrawals:pending  -> user cash
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from betting.selectors import user_get
from common.errors import InvalidInput
from common.parsers import InvalidJson, json_loads_strict
from ledger.exceptions import IdempotencyConflict
from ledger.models import Account
from ledger.services import Line, account_ensure_user_cash, amount_validate, ledger_post
from ops.selectors import betting_halt
from ops.services import audit_record
from withdrawals.adapters import COMPLETED, FAILED, PENDING, payout_adapter_get
from withdrawals.exceptions import (
    ApprovalRefused,
    DepositConflict,
    DestinationRequired,
    InvalidDestination,
    InvalidSignature,
    InvalidTransition,
    InvalidWebhook,
    PayoutInFlight,
    PayoutRejected,
    PayoutUnavailable,
    PermissionRefused,
    ProcessingHalted,
    SimulationDisabled,
    StaleWebhook,
    WithdrawalLimitExceeded,
    WithdrawalNotFound,
)
from withdrawals.models import Deposit, DepositIntent, Withdrawal
from withdrawals.selectors import destination_default

logger = logging.getLogger(__name__)

EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")


# --- Deposits ---------------------------------------------------------------------------------


def deposit_credit(
    *,
    user: Any,
    amount_u: int,
    tx_id: str,
    source: str,
    acting_user: Any = None,
    payload: dict | None = None,
    reason: str = "",
    intent: DepositIntent | None = None,
    from_address: str = "",
) -> tuple[Deposit, bool]:
    """Credit a deposit once per external tx id: external:deposits -> user cash.

    The same tx id again with the same user and amount answers the first deposit
    (created=False); with another user or amount it is a DepositConflict (409).
    """
    amount_validate(amount_u)
    if not isinstance(tx_id, str) or not tx_id.strip() or len(tx_id) > 128:
        raise InvalidWebhook("tx_id must be a non-empty string of at most 128 characters.", code="invalid_tx_id")
    cash = account_ensure_user_cash(user=user).code
    with transaction.atomic():
        # Concurrent deliveries of one tx id queue on the unique index here; the loser reads the winner's row.
        deposit, created = Deposit.objects.get_or_create(
            tx_id=tx_id,
            defaults={
                "user": user,
                "amount_u": amount_u,
                "source": source,
                "raw_payload": payload,
                "intent": intent,
                "from_address": from_address,
            },
        )
        if not created and (deposit.user_id != user.pk or deposit.amount_u != amount_u):
            raise DepositConflict(f"Deposit {tx_id!r} was already recorded with another user or amount.")
        ledger_post(
            [Line(cash, amount_u), Line(Account.EXTERNAL_DEPOSITS, -amount_u)],
            ref_type="deposit",
            ref_id=deposit.pk,
            idempotency_key=f"deposit:{tx_id}",
            acting_user=acting_user,
        )
        if created and source in ("cli", "admin"):
            audit_record(
                action="deposit.credit",
                source=source,
                actor=acting_user,
                object_type="deposit",
                object_id=deposit.pk,
                reason=reason,
                after={"user": str(user.pk), "amount_u": amount_u, "tx_id": tx_id},
            )
    return deposit, created


def webhook_signature(*, raw_body: bytes, secret: str | None = None) -> str:
    """The X-Signature header value a provider sends: "sha256=" + hex HMAC-SHA256 of the raw body."""
    key = (settings.DEPOSIT_WEBHOOK_SECRET if secret is None else secret).encode()
    return "sha256=" + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def deposit_webhook_receive(*, raw_body: bytes, signature: str) -> tuple[Deposit, bool]:
    """The payment provider's callback: verify, check freshness, resolve the user, credit once.

    Body (JSON, signed as sent): {"tx_id", "amount_u", "timestamp" (unix seconds),
    "user_id" and/or "reference" (a deposit intent), optional "from_address"}.
    """
    expected = webhook_signature(raw_body=raw_body)
    given = (signature or "").strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise InvalidSignature("The X-Signature header does not match the body.")
    try:  # bounded depth (json_too_deep), no lone surrogates (invalid_text), strict UTF-8
        payload = json_loads_strict(raw_body)
    except InvalidJson as exc:
        raise InvalidWebhook(exc.detail) from exc
    if not isinstance(payload, dict):
        raise InvalidWebhook("The body must be a JSON object.")
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise StaleWebhook("The signed payload needs an integer 'timestamp' (unix seconds).")
    if abs(time.time() - timestamp) > settings.DEPOSIT_WEBHOOK_TOLERANCE_SECONDS:
        raise StaleWebhook(
            f"The webhook timestamp is more than {settings.DEPOSIT_WEBHOOK_TOLERANCE_SECONDS}s from now (replay?)."
        )
    amount_u = payload.get("amount_u")
    amount_validate(amount_u)
    intent = None
    reference = payload.get("reference")
    if reference not in (None, ""):
        intent = DepositIntent.objects.filter(reference=str(reference)).select_related("user").first()
        if intent is None:
            raise InvalidWebhook(f"No deposit intent with reference {reference!r}.", code="unknown_reference")
    user_id = payload.get("user_id")
    if user_id in (None, ""):
        if intent is None:
            raise InvalidWebhook("The payload needs a 'user_id' or a 'reference'.")
        user = intent.user
    else:
        user = user_get(user_id=user_id)
        if intent is not None and intent.user_id != user.pk:
            raise DepositConflict("The reference belongs to another user than 'user_id'.", code="reference_mismatch")
    from_address = payload.get("from_address") or ""
    if from_address and not (isinstance(from_address, str) and EVM_ADDRESS.fullmatch(from_address)):
        raise InvalidWebhook("from_address must be 0x followed by 40 hex digits.", code="invalid_from_address")
    return deposit_credit(
        user=user,
        amount_u=amount_u,
        tx_id=payload.get("tx_id") if isinstance(payload.get("tx_id"), str) else "",
        source="webhook",
        payload=payload,
        intent=intent,
        from_address=from_address,
    )


def simulated_wallet_address(*, user_id: Any) -> str:
    """The bettor's wallet in simulation: where simulated deposits come from (and default payouts go)."""
    return "0x" + hashlib.sha256(f"simulated-wallet:{user_id}".encode()).hexdigest()[:40]


def deposit_simulate(*, user_id: Any, amount_u: Any, tx_id: str = "") -> Deposit | None:
    """The dev-only simulator (runbook's /simulate/deposit_webhook). amount_u 0 credits nothing."""
    if not settings.SIMULATION_ENABLED:
        raise SimulationDisabled("Not found.")
    amount_validate(amount_u, allow_zero=True)
    user = user_get(user_id=user_id)
    if amount_u == 0:
        return None
    deposit, _ = deposit_credit(
        user=user,
        amount_u=amount_u,
        tx_id=tx_id or f"sim:{uuid.uuid4()}",
        source="simulation",
        payload={"user_id": str(user.pk), "amount_u": amount_u, "simulated": True},
        from_address=simulated_wallet_address(user_id=user.pk),
    )
    return deposit


def deposit_intent_create(*, user: Any, amount_u: int | None = None) -> DepositIntent:
    """Where and how to pay: the custody address, the USDC contract and a reference the webhook quotes."""
    if amount_u is not None:
        amount_validate(amount_u)
    while True:
        reference = "DEP-" + secrets.token_hex(6).upper()
        if not DepositIntent.objects.filter(reference=reference).exists():
            break
    return DepositIntent.objects.create(
        reference=reference,
        user=user,
        address=settings.DEPOSIT_ADDRESS,
        chain_id=settings.DEPOSIT_CHAIN_ID,
        token_address=settings.DEPOSIT_TOKEN_ADDRESS,
        amount_u=amount_u,
    )


# --- Withdrawals: request, cancel, approve ----------------------------------------------------


def destination_validate(destination: Any) -> str:
    if not isinstance(destination, str) or not EVM_ADDRESS.fullmatch(destination.strip()):
        raise InvalidDestination("destination must be an EVM address: 0x followed by 40 hex digits.")
    return destination.strip()


def withdrawal_request(
    *,
    user: Any,
    amount_u: int,
    destination: str = "",
    source: str,
    acting_user: Any = None,
    idempotency_key: str | None = None,
) -> Withdrawal:
    """Queue a withdrawal: user cash -> withdrawals:pending, in one batch.

    A blank destination (the runbook's staff/CLI calls name no address) means the user's last
    payout address, else the address their last deposit came from, else (simulation only) their
    simulated wallet; with none of these it is refused (destination_required).

    With an `idempotency_key` the same request again returns the first withdrawal (its
    `replayed` attribute is True) and moves nothing; the same key with another body is a 422.
    """
    amount_validate(amount_u)
    digest = ""
    if idempotency_key is not None:
        if not (isinstance(idempotency_key, str) and IDEMPOTENCY_KEY.fullmatch(idempotency_key)):
            raise InvalidInput(
                "Idempotency-Key must be 1 to 128 printable ASCII characters.", code="invalid_idempotency_key"
            )
        digest = hashlib.sha256(
            json.dumps([str(user.pk), amount_u, destination or ""], separators=(",", ":")).encode()
        ).hexdigest()
    if amount_u < settings.WITHDRAWAL_MIN_U:
        raise WithdrawalLimitExceeded(f"The minimum withdrawal is {settings.WITHDRAWAL_MIN_U} u.", code="below_minimum")
    if amount_u > settings.WITHDRAWAL_MAX_U:
        raise WithdrawalLimitExceeded(f"The maximum withdrawal per request is {settings.WITHDRAWAL_MAX_U} u.")
    if destination:
        destination = destination_validate(destination)
    else:
        destination = destination_default(user=user)
        if not destination and settings.SIMULATION_ENABLED:
            destination = simulated_wallet_address(user_id=user.pk)  # in simulation every bettor has a wallet
        if not destination:
            raise DestinationRequired(
                "A destination address (0x + 40 hex) is required: none is known for this user yet."
            )
    cash = account_ensure_user_cash(user=user).code
    requester = acting_user if getattr(acting_user, "pk", None) else user
    with transaction.atomic():
        # The user's cash row is the lock ledger_post takes first anyway (codes sort user: < withdrawals:);
        # taking it now serialises one user's requests, so the daily limit holds under races.
        Account.objects.select_for_update(no_key=True).filter(code=cash).first()
        if idempotency_key is not None:
            earlier = Withdrawal.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if earlier is not None:
                if earlier.request_digest != digest:
                    raise IdempotencyConflict(
                        f"Idempotency-Key {idempotency_key!r} was already used for a different withdrawal."
                    )
                earlier.replayed = True
                return earlier
        since = timezone.now() - timedelta(hours=24)
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
        withdrawal = Withdrawal.objects.create(
            user=user,
            amount_u=amount_u,
            destination=destination,
            requested_by=requester,
            needs_approval=amount_u > settings.WITHDRAWAL_APPROVAL_THRESHOLD_U,
            idempotency_key=idempotency_key,
            request_digest=digest,
        )
        withdrawal.replayed = False
        ledger_post(
            [Line(cash, -amount_u), Line(Account.WITHDRAWALS_PENDING, amount_u)],
            ref_type="withdrawal",
            ref_id=withdrawal.pk,
            idempotency_key=f"withdrawal:{withdrawal.pk}:reserve",
            acting_user=acting_user,
        )
        audit_record(
            action="withdrawal.request",
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
            },
        )
    return withdrawal


def _locked(withdrawal_id: Any) -> Withdrawal:
    withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    return withdrawal


def _release(withdrawal: Withdrawal, *, to_account: str, acting_user: Any) -> None:
    """Move the amount out of pending. One key per withdrawal: paid or refunded, never both."""
    ledger_post(
        [Line(Account.WITHDRAWALS_PENDING, -withdrawal.amount_u), Line(to_account, withdrawal.amount_u)],
        ref_type="withdrawal",
        ref_id=withdrawal.pk,
        idempotency_key=f"withdrawal:{withdrawal.pk}:release",
        acting_user=acting_user,
    )


def withdrawal_cancel(*, withdrawal_id: Any, user: Any, source: str = "api") -> Withdrawal:
    """The bettor takes back a withdrawal that is still QUEUED: pending -> cash."""
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id, user=user).first()
        if withdrawal is None:
            raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
        if withdrawal.status != Withdrawal.Status.QUEUED:
            raise InvalidTransition(f"Only a QUEUED withdrawal can be cancelled; this one is {withdrawal.status}.")
        _release(withdrawal, to_account=Account.user_cash_code(user.pk), acting_user=user)
        withdrawal.status = Withdrawal.Status.CANCELLED
        withdrawal.finished_at = timezone.now()
        withdrawal.save(update_fields=["status", "finished_at", "updated_at"])
        audit_record(
            action="withdrawal.cancel",
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


def withdrawal_approve(*, withdrawal_id: Any, acting_user: Any, source: str = "admin", reason: str = "") -> Withdrawal:
    """Four-eyes: a staff user who neither owns nor requested it (nor approved it already) approves."""
    if not (getattr(acting_user, "is_staff", False) and acting_user.has_perm("withdrawals.approve_withdrawal")):
        raise PermissionRefused("You need the 'approve withdrawal' permission.")
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        if withdrawal.status != Withdrawal.Status.QUEUED or not withdrawal.needs_approval:
            raise InvalidTransition(
                f"Withdrawal {withdrawal.pk} does not wait for approval ({withdrawal.status}).", code="not_awaiting"
            )
        if withdrawal_is_approved(withdrawal=withdrawal):
            raise InvalidTransition(f"Withdrawal {withdrawal.pk} is already approved.", code="already_approved")
        if acting_user.pk in (withdrawal.user_id, withdrawal.requested_by_id):
            raise ApprovalRefused("You cannot approve a withdrawal you own or requested.", code="own_withdrawal")
        if acting_user.pk == withdrawal.approved_by_id:
            raise ApprovalRefused("The second approval must come from another staff user.", code="same_approver")
        now = timezone.now()
        if withdrawal.approved_by_id is None:
            withdrawal.approved_by, withdrawal.approved_at = acting_user, now
        else:
            withdrawal.second_approved_by, withdrawal.second_approved_at = acting_user, now
        withdrawal.save(
            update_fields=["approved_by", "approved_at", "second_approved_by", "second_approved_at", "updated_at"]
        )
        audit_record(
            action="withdrawal.approve",
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            reason=reason,
            after={"approvals": withdrawal.approvals, "required": settings.WITHDRAWAL_APPROVALS_REQUIRED},
        )
    return withdrawal


# --- Withdrawals: processing ------------------------------------------------------------------


@dataclass
class ProcessReport:
    claimed: int = 0
    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)


def _halt_check() -> None:
    halt = betting_halt()
    if halt is not None and halt.code == "emergency_stop":
        raise ProcessingHalted(f"Withdrawal processing is stopped by the emergency stop: {halt.reason}")


def _approved_q() -> Q:
    approver = "second_approved_by" if settings.WITHDRAWAL_APPROVALS_REQUIRED >= 2 else "approved_by"
    return Q(needs_approval=False) | Q(**{f"{approver}__isnull": False})


def _withdrawals_claim(*, limit: int, withdrawal_ids: list[int] | None) -> list[tuple[int, bool]]:
    """Take a batch: approved QUEUED ones, and PROCESSING ones whose worker's lease ran out (resumed)."""
    now = timezone.now()
    due = (Q(status=Withdrawal.Status.QUEUED) & _approved_q()) | Q(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now), status=Withdrawal.Status.PROCESSING
    )
    claimed = []
    with transaction.atomic():
        rows = Withdrawal.objects.select_for_update(skip_locked=True).filter(due).order_by("id")
        if withdrawal_ids is not None:
            rows = rows.filter(pk__in=withdrawal_ids)
        for withdrawal in list(rows[:limit]):
            resumed = withdrawal.status == Withdrawal.Status.PROCESSING
            withdrawal.status = Withdrawal.Status.PROCESSING
            withdrawal.processing_started_at = withdrawal.processing_started_at or now
            withdrawal.lease_until = now + timedelta(seconds=settings.WITHDRAWAL_PROCESSING_LEASE_SECONDS)
            withdrawal.attempts += 1
            withdrawal.save(update_fields=["status", "processing_started_at", "lease_until", "attempts", "updated_at"])
            claimed.append((withdrawal.pk, resumed))
    return claimed


def withdrawal_complete(*, withdrawal_id: Any, tx_hash: str, source: str, acting_user: Any = None) -> Withdrawal:
    """Record a payout that happened: pending -> external:withdrawals. Only from PROCESSING."""
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        if withdrawal.status != Withdrawal.Status.PROCESSING:
            raise InvalidTransition(f"Only a PROCESSING withdrawal can complete; this one is {withdrawal.status}.")
        _release(withdrawal, to_account=Account.EXTERNAL_WITHDRAWALS, acting_user=acting_user)
        withdrawal.status = Withdrawal.Status.COMPLETED
        withdrawal.tx_hash = tx_hash
        withdrawal.lease_until = None
        withdrawal.finished_at = timezone.now()
        withdrawal.save(update_fields=["status", "tx_hash", "lease_until", "finished_at", "updated_at"])
        audit_record(
            action="withdrawal.complete",
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            before={"status": Withdrawal.Status.PROCESSING},
            after={"status": withdrawal.status, "tx_hash": tx_hash},
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


def withdrawal_fail(
    *, withdrawal_id: Any, reason: str, source: str, acting_user: Any = None, payout_checked: bool = False
) -> Withdrawal:
    """Fail and refund (pending -> user cash), record the reason, email the user after commit.

    Staff may fail a QUEUED withdrawal, or a PROCESSING one whose worker's lease has run
    out and whose payout the custodian does not know or reports failed (never one in flight).
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidTransition("A reason is required to fail a withdrawal.", code="reason_required", status=400)
    if acting_user is not None and not acting_user.has_perm("withdrawals.fail_withdrawal"):
        raise PermissionRefused("You need the 'fail withdrawal' permission.")
    if not payout_checked:
        current = Withdrawal.objects.filter(pk=withdrawal_id).first()
        if current is None:
            raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
        if current.status == Withdrawal.Status.PROCESSING:
            if current.lease_until and current.lease_until > timezone.now():
                raise PayoutInFlight(f"Withdrawal {current.pk} is being paid right now; try after its lease ends.")
            try:
                known = payout_adapter_get().status(current.reference, current.tx_hash)
            except PayoutUnavailable as exc:
                raise PayoutInFlight(f"Cannot ask the payout service about {current.pk}: {exc}") from exc
            if known.state in (COMPLETED, PENDING):
                raise PayoutInFlight(f"The payout service reports withdrawal {current.pk} as {known.state}.")
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        before = withdrawal.status
        if before not in (Withdrawal.Status.QUEUED, Withdrawal.Status.PROCESSING):
            raise InvalidTransition(f"Only a QUEUED or PROCESSING withdrawal can fail; this one is {before}.")
        _release(withdrawal, to_account=Account.user_cash_code(withdrawal.user_id), acting_user=acting_user)
        withdrawal.status = Withdrawal.Status.FAILED
        withdrawal.failure_reason = reason
        withdrawal.lease_until = None
        withdrawal.finished_at = timezone.now()
        withdrawal.save(update_fields=["status", "failure_reason", "lease_until", "finished_at", "updated_at"])
        audit_record(
            action="withdrawal.fail",
            source=source,
            actor=acting_user,
            object_type="withdrawal",
            object_id=withdrawal.pk,
            reason=reason,
            before={"status": before},
            after={"status": withdrawal.status},
        )
        transaction.on_commit(lambda: _notify_failure(withdrawal))
    return withdrawal


def _withdrawal_note_error(withdrawal_id: int, error: str) -> None:
    Withdrawal.objects.filter(pk=withdrawal_id).update(last_error=error[:2000], updated_at=timezone.now())


def _withdrawal_pay(withdrawal_id: int, *, resumed: bool, source: str, acting_user: Any) -> str:
    """Send one claimed withdrawal; a resumed one asks the custodian first so it is never paid twice."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal_id)
    adapter = payout_adapter_get()
    try:
        if resumed:
            known = adapter.status(withdrawal.reference, withdrawal.tx_hash)
            if known.state == COMPLETED:
                withdrawal_complete(
                    withdrawal_id=withdrawal_id, tx_hash=known.tx_hash, source=source, acting_user=acting_user
                )
                return "completed"
            if known.state == FAILED:
                withdrawal_fail(
                    withdrawal_id=withdrawal_id,
                    reason=known.reason or "payout failed",
                    source=source,
                    payout_checked=True,
                )
                return "failed"
            if known.state == PENDING:
                return "in_flight"
            # unknown: the custodian never got it; send now (same reference, so still at most once)
        tx_hash = adapter.send(withdrawal.destination, withdrawal.amount_u, withdrawal.reference)
    except PayoutRejected as exc:
        withdrawal_fail(withdrawal_id=withdrawal_id, reason=str(exc), source=source, payout_checked=True)
        return "failed"
    except PayoutUnavailable as exc:
        _withdrawal_note_error(withdrawal_id, str(exc))
        return "in_flight"
    withdrawal_complete(withdrawal_id=withdrawal_id, tx_hash=tx_hash, source=source, acting_user=acting_user)
    return "completed"


def withdrawals_process(
    *,
    limit: int | None = None,
    withdrawal_ids: list[int] | None = None,
    source: str = "beat",
    acting_user: Any = None,
    reason: str = "",
) -> ProcessReport:
    """Pay a batch through the payout adapter. Safe to run twice and side by side (skip-locked claims).

    Refused while the emergency stop is on. A worker that dies between the payout and its
    record leaves the item PROCESSING; after its lease the next run asks `status` first.
    """
    if acting_user is not None and not acting_user.has_perm("withdrawals.process_withdrawal"):
        raise PermissionRefused("You need the 'process withdrawal' permission.")
    _halt_check()
    report = ProcessReport()
    claimed = _withdrawals_claim(limit=limit or settings.WITHDRAWAL_BATCH_SIZE, withdrawal_ids=withdrawal_ids)
    report.claimed = len(claimed)
    if withdrawal_ids is not None:  # a manual "process now": one audit row with who, why and what was taken
        with transaction.atomic():
            audit_record(
                action="withdrawal.process_now",
                source=source,
                actor=acting_user,
                object_type="withdrawal",
                object_id=",".join(str(pk) for pk in withdrawal_ids)[:128],
                reason=reason,
                after={"claimed": [pk for pk, _ in claimed]},
            )
    for withdrawal_id, resumed in claimed:
        try:
            _halt_check()
            outcome = _withdrawal_pay(withdrawal_id, resumed=resumed, source=source, acting_user=acting_user)
        except ProcessingHalted:
            raise
        except Exception as exc:  # one bad item must not stop the batch; it stays PROCESSING and is resumed
            logger.exception("withdrawal %s: processing error", withdrawal_id)
            _withdrawal_note_error(withdrawal_id, f"{exc.__class__.__name__}: {exc}")
            report.errors.append(withdrawal_id)
            continue
        {"completed": report.completed, "failed": report.failed, "in_flight": report.in_flight}[outcome].append(
            withdrawal_id
        )
    return report
