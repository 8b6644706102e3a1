"""Deposits in: credit once per external transaction, from the provider's webhook, the shell or the simulator."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record, audit_record_many
from betting.selectors import user_get
from common.errors import NotFound
from common.sql import rows_insert
from common.types import User
from ledger.services import amount_validate
from withdrawals.exceptions import DepositConflict, InvalidWebhook
from withdrawals.models import Deposit, DepositIntent
from withdrawals.services.addresses import EVM_ADDRESS
from withdrawals.services.money import (
    deposit_post_credit,
    deposit_post_credit_many,
    user_cash_ensure,
    user_cash_ensure_many,
)


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
    _deposit_validate(amount_u=amount_u, tx_id=tx_id)
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


def _deposit_validate(*, amount_u: Any, tx_id: Any) -> None:
    amount_validate(amount_u)
    if not isinstance(tx_id, str) or not tx_id.strip() or len(tx_id) > 128:
        raise InvalidWebhook("tx_id must be a non-empty string of at most 128 characters.", code="invalid_tx_id")


@dataclass(frozen=True)
class DepositCredit:
    """One deposit of `deposits_credit_many`: who, how much, under which external tx id."""

    user_id: Any
    amount_u: int
    tx_id: str


def deposits_credit_many(
    *, credits: list[DepositCredit], source: str, acting_user: User | None = None, reason: str = ""
) -> list[tuple[Deposit, bool]]:
    """Many `deposit_credit`s in a few statements (seed funds thousands of bettors): the same rows.

    Each deposit is what deposit_credit makes of it: one Deposit row per tx id, its own ledger batch
    (key `deposit:<tx_id>`, external:deposits -> the user's cash), an audit row when made at the
    shell or the admin. A tx id already recorded with the same user and amount answers its deposit
    (created=False) and posts nothing again; with another user or amount it is a DepositConflict
    and nothing is written. One transaction; one (deposit, created) per credit, in order.
    """
    for credit in credits:
        _deposit_validate(amount_u=credit.amount_u, tx_id=credit.tx_id)
    if len({credit.tx_id for credit in credits}) != len(credits):
        raise DepositConflict("The same tx_id twice in one call.", code="duplicate_tx_id")
    if not credits:
        return []
    with transaction.atomic():
        cash_codes = user_cash_ensure_many(user_ids=[credit.user_id for credit in credits])
        made = _deposits_insert(credits, source=source)
        missing = [credit.tx_id for credit in credits if credit.tx_id not in made]
        earlier = {deposit.tx_id: deposit for deposit in Deposit.objects.filter(tx_id__in=missing)} if missing else {}
        answers: list[tuple[Deposit, bool]] = []
        for credit in credits:
            if credit.tx_id in made:
                answers.append((made[credit.tx_id], True))
                continue
            deposit = earlier[credit.tx_id]
            if str(deposit.user_id) != str(credit.user_id) or deposit.amount_u != credit.amount_u:
                raise DepositConflict(f"Deposit {credit.tx_id!r} was already recorded with another user or amount.")
            answers.append((deposit, False))
        deposit_post_credit_many(
            deposits=[(deposit, code) for (deposit, _), code in zip(answers, cash_codes, strict=True)],
            acting_user=acting_user,
        )
        if source in ("cli", "admin"):
            audit_record_many(
                action=AuditAction.DEPOSIT_CREDIT,
                source=source,
                actor=acting_user,
                object_type="deposit",
                reason=reason,
                events=[
                    (deposit.pk, {"user": str(deposit.user_id), "amount_u": deposit.amount_u, "tx_id": deposit.tx_id})
                    for deposit, created in answers
                    if created
                ],
            )
    return answers


def _deposits_insert(credits: list[DepositCredit], *, source: str) -> dict[str, Deposit]:
    """INSERT … ON CONFLICT (tx_id) DO NOTHING RETURNING, all rows in one statement (SQLite: as its parameter
    limit allows): {tx_id: deposit} for the rows this call made (a tx id already recorded, or by a twin that
    commits, is not among them)."""
    created_at = timezone.now()
    status = Deposit.Status.CREDITED.value
    returned = rows_insert(
        Deposit,
        ["tx_id", "user", "amount_u", "status", "source", "from_address", "created_at"],
        [(credit.tx_id, credit.user_id, credit.amount_u, status, source, "", created_at) for credit in credits],
        suffix="ON CONFLICT (tx_id) DO NOTHING RETURNING id, tx_id",
    )
    ids = {tx_id: pk for pk, tx_id in returned}
    made: dict[str, Deposit] = {}
    for credit in credits:
        if credit.tx_id in ids:
            deposit = Deposit(
                id=ids[credit.tx_id],
                tx_id=credit.tx_id,
                user_id=credit.user_id,
                amount_u=credit.amount_u,
                source=source,
                created_at=created_at,
            )
            deposit._state.adding = False
            deposit._state.db = connection.alias
            made[credit.tx_id] = deposit
    return made


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
