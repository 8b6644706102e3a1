"""Deposits in, withdrawals out. Every movement of money here is one `ledger_post`.

Withdrawal money path (one idempotency key per withdrawal for the way out of pending,
`withdrawal:<id>:release`, so a withdrawal can never be both paid and refunded):

    request:          user cash            -> withdrawals:pending
    complete:         withdrawals:pending  -> external:withdrawals
    fail / cancel:    withdrawals:pending  -> user cash

A payout that may be at the custodian is refunded only on the custodian's word: see the payout
state machine above `withdrawals_process`.
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

from audit.services import audit_record
from betting.selectors import user_get
from common.errors import InvalidInput
from common.parsers import InvalidJson, json_loads_strict
from ledger.exceptions import IdempotencyConflict
from ledger.models import Account
from ledger.services import Line, account_ensure_user_cash, amount_validate, ledger_post
from ops.selectors import betting_halt
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
from withdrawals.models import Deposit, DepositIntent, PayoutAddress, Withdrawal
from withdrawals.selectors import destination_default, payout_address_default, payout_address_find

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


REQUEST_WITHDRAWAL_ON_BEHALF = "withdrawals.request_withdrawal_on_behalf"


def withdrawal_on_behalf_authorize(*, acting_user: Any) -> None:
    """May `acting_user` move another user's cash out? Only staff with finance's permission.

    `is_staff` alone is not enough: the read-only auditor and the operator are staff too. The
    API calls this before it looks the user up; `withdrawal_request` calls it again for every door.
    """
    if not (getattr(acting_user, "is_staff", False) and acting_user.has_perm(REQUEST_WITHDRAWAL_ON_BEHALF)):
        raise PermissionRefused(
            "Withdrawing on behalf of another user needs the 'request withdrawal on behalf' permission."
        )


def _payout_address_record(
    *, user: Any, address: str, source: str, label: str = "", via: str = ""
) -> tuple[PayoutAddress, bool]:
    """Add `address` (validated, lower-case) to the user's book; inside the caller's transaction."""
    cooling_off = timedelta(hours=settings.PAYOUT_ADDRESS_COOLING_OFF_HOURS)
    entry, created = PayoutAddress.objects.get_or_create(
        user=user,
        address=address,
        defaults={"label": label, "source": source, "usable_from": timezone.now() + cooling_off},
    )
    if created:
        audit_record(
            action="payout_address.register",
            source=source,
            actor=user,
            object_type="payout_address",
            object_id=entry.pk,
            after={
                "user": str(user.pk),
                "address": address,
                "label": label,
                "usable_from": entry.usable_from.isoformat(),
                **({"via": via} if via else {}),
            },
        )
    return entry, created


def payout_address_register(*, user: Any, address: Any, source: str, label: str = "") -> tuple[PayoutAddress, bool]:
    """The user adds an address to their own book. Returns (entry, created); again is a no-op.

    Only the user does this (their own token, `/api/v1/me/payout-addresses`): an address staff
    could add for a user would defeat the book. The address can receive a withdrawal that staff
    request for the user from `usable_from` on (PAYOUT_ADDRESS_COOLING_OFF_HOURS after now).
    """
    address = destination_validate(address).lower()
    label = (label or "").strip()
    if len(label) > 64:
        raise InvalidInput("label must be at most 64 characters.", code="invalid_label")
    with transaction.atomic():
        return _payout_address_record(user=user, address=address, source=source, label=label)


def _on_behalf_hold(*, user: Any, destination: str, now: Any) -> str:
    """Why a withdrawal someone else asked for must wait for a second person ("" = it need not)."""
    entry = payout_address_find(user=user, address=destination)
    if entry is None:
        return "destination is not in the user's address book"
    if entry.usable_from > now:
        return f"destination is in its cooling-off period until {entry.usable_from.isoformat()}"
    return ""


def withdrawal_request(
    *,
    user: Any,
    amount_u: int,
    destination: str = "",
    source: str,
    acting_user: Any = None,
    idempotency_key: str | None = None,
    from_shell: bool = False,
) -> Withdrawal:
    """Queue a withdrawal: user cash -> withdrawals:pending, in one batch.

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

    With an `idempotency_key` the same request again returns the first withdrawal (its
    `replayed` attribute is True) and moves nothing; the same key with another body is a 422.
    """
    on_behalf = from_shell or (acting_user is not None and acting_user.pk != user.pk)
    if on_behalf and not from_shell:
        withdrawal_on_behalf_authorize(acting_user=acting_user)
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
    cash = account_ensure_user_cash(user=user).code
    if getattr(acting_user, "pk", None):
        requester = acting_user
    else:
        requester = None if from_shell else user
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
                **({"on_behalf": True} if on_behalf else {}),
                **({"held_because": held_because} if held_because else {}),
            },
        )
        if named and not on_behalf:
            # The user named this address in their own authenticated request: that is registering it.
            # Its cooling-off starts now; staff requests for the user may use it without approval later.
            _payout_address_record(
                user=user, address=destination.lower(), source=source, via=f"withdrawal {withdrawal.pk}"
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
#
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


def _lease_until() -> Any:
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
        withdrawal = _locked(claim.withdrawal_id)
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


def withdrawal_complete(*, withdrawal_id: Any, tx_hash: str, source: str, acting_user: Any = None) -> Withdrawal:
    """Record a payout that happened: pending -> external:withdrawals. Only from PROCESSING (flagged for
    reconciliation or not: the custodian paid it). The same tx hash again answers the completed row."""
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        if withdrawal.status == Withdrawal.Status.COMPLETED and tx_hash and withdrawal.tx_hash == tx_hash:
            return withdrawal  # a second worker that resumed it recorded the same payout first
        if withdrawal.status != Withdrawal.Status.PROCESSING:
            raise InvalidTransition(f"Only a PROCESSING withdrawal can complete; this one is {withdrawal.status}.")
        _release(withdrawal, to_account=Account.EXTERNAL_WITHDRAWALS, acting_user=acting_user)
        withdrawal.status = Withdrawal.Status.COMPLETED
        withdrawal.tx_hash = tx_hash
        withdrawal.lease_until = None
        withdrawal.needs_reconciliation = False
        withdrawal.finished_at = timezone.now()
        withdrawal.save(
            update_fields=["status", "tx_hash", "lease_until", "needs_reconciliation", "finished_at", "updated_at"]
        )
        audit_record(
            action="withdrawal.complete",
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


def _withdrawal_refund(withdrawal: Withdrawal, *, reason: str, source: str, acting_user: Any) -> Withdrawal:
    """Inside the caller's transaction, with the row locked: pending -> user cash, FAILED, email after commit."""
    before = withdrawal.status
    _release(withdrawal, to_account=Account.user_cash_code(withdrawal.user_id), acting_user=acting_user)
    withdrawal.status = Withdrawal.Status.FAILED
    withdrawal.failure_reason = reason
    withdrawal.lease_until = None
    withdrawal.needs_reconciliation = False
    withdrawal.finished_at = timezone.now()
    withdrawal.save(
        update_fields=["status", "failure_reason", "lease_until", "needs_reconciliation", "finished_at", "updated_at"]
    )
    audit_record(
        action="withdrawal.fail",
        source=source,
        actor=acting_user,
        object_type="withdrawal",
        object_id=withdrawal.pk,
        reason=reason,
        before={"status": before},
        after={"status": withdrawal.status, "payout_reference": withdrawal.reference},
    )
    transaction.on_commit(lambda: _notify_failure(withdrawal))
    return withdrawal


def withdrawal_fail(
    *, withdrawal_id: Any, reason: str, source: str, acting_user: Any = None, payout_checked: bool = False
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
        raise InvalidTransition("A reason is required to fail a withdrawal.", code="reason_required", status=400)
    if acting_user is not None and not acting_user.has_perm("withdrawals.fail_withdrawal"):
        raise PermissionRefused("You need the 'fail withdrawal' permission.")
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
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
            action="withdrawal.reconcile_requested",
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
    withdrawal: Withdrawal, *, adapter: Any, source: str, acting_user: Any
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
        locked = _locked(withdrawal.pk)
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


def withdrawal_resolve(*, withdrawal_id: Any, source: str, acting_user: Any = None) -> Resolution:
    """Settle a PROCESSING withdrawal whose outcome is unknown by asking the custodian (status by payout
    reference): the only way such an item is completed or, if the custodian never paid it, refunded."""
    if acting_user is not None and not acting_user.has_perm("withdrawals.process_withdrawal"):
        raise PermissionRefused("You need the 'process withdrawal' permission.")
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


def _withdrawal_pay(claim: _Claim, *, source: str, acting_user: Any) -> str:
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
            withdrawal = _withdrawal_mark_sending(claim)
            if withdrawal is None:
                return "in_flight"
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
    acting_user: Any = None,
    reason: str = "",
) -> ProcessReport:
    """Pay due withdrawals through the payout adapter, one claimed item at a time (see the state machine
    above). Safe to run twice and side by side (skip-locked claims, re-checked before each send).

    Refused while the emergency stop is on. A worker that dies between the payout and its record
    leaves the item PROCESSING; after its lease the next run asks `status` first. Items flagged for
    reconciliation are settled here too, on the custodian's answer only.
    """
    if acting_user is not None and not acting_user.has_perm("withdrawals.process_withdrawal"):
        raise PermissionRefused("You need the 'process withdrawal' permission.")
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
                    action="withdrawal.process_now",
                    source=source,
                    actor=acting_user,
                    object_type="withdrawal",
                    object_id=",".join(str(pk) for pk in withdrawal_ids)[:128],
                    reason=reason,
                    after={"claimed": sorted(seen)},
                )
    return report
