"""Deposits in: credit once per external transaction, from the provider's webhook, the shell or the simulator."""

import hashlib
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record
from betting.selectors import user_get
from common.errors import NotFound
from common.types import User
from ledger.services import amount_validate
from withdrawals.exceptions import DepositConflict, InvalidWebhook
from withdrawals.models import Deposit, DepositIntent
from withdrawals.services.addresses import EVM_ADDRESS
from withdrawals.services.money import deposit_post_credit, user_cash_ensure


def deposit_credit(
    *,
    user: User,
    amount_u: int,
    tx_id: str,
    source: str,
    acting_user: User | None = None,
    payload: dict[str, Any] | None = None,
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
    cash_code = user_cash_ensure(user=user)
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
        deposit_post_credit(deposit=deposit, cash_code=cash_code, acting_user=acting_user)
        if created and source in ("cli", "admin"):
            audit_record(
                action=AuditAction.DEPOSIT_CREDIT,
                source=source,
                actor=acting_user,
                object_type="deposit",
                object_id=deposit.pk,
                reason=reason,
                after={"user": str(user.pk), "amount_u": amount_u, "tx_id": tx_id},
            )
    return deposit, created


def deposit_webhook_credit(*, payload: dict[str, Any]) -> tuple[Deposit, bool]:
    """The payment provider's callback, already verified (`withdrawals.webhooks`): resolve the user, credit once.

    `payload` is the signed JSON object: {"tx_id", "amount_u", "user_id" and/or "reference" (a
    deposit intent), optional "from_address"}; its signature and timestamp are the transport's
    business and are not looked at here.
    """
    amount_u = amount_validate(payload.get("amount_u"))
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
    tx_id = payload.get("tx_id")
    return deposit_credit(
        user=user,
        amount_u=amount_u,
        tx_id=tx_id if isinstance(tx_id, str) else "",
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
        raise NotFound("Not found.")  # off: the simulator does not exist
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


def deposit_intent_create(*, user: User, amount_u: int | None = None) -> DepositIntent:
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
