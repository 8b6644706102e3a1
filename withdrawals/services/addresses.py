"""The payout address book: the addresses a user registered to be paid to, each with a cooling-off."""

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from common.errors import InvalidInput
from common.types import User
from withdrawals.exceptions import InvalidDestination
from withdrawals.models import PayoutAddress

EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def destination_validate(destination: Any) -> str:
    if not isinstance(destination, str) or not EVM_ADDRESS.fullmatch(destination.strip()):
        raise InvalidDestination("destination must be an EVM address: 0x followed by 40 hex digits.")
    return destination.strip()


def payout_address_record(
    *, user: User, address: str, source: str, label: str = "", via: str = ""
) -> tuple[PayoutAddress, bool]:
    """Add `address` (already validated, lower-case) to the user's book, inside the caller's transaction.

    `payout_address_register` and a user's own `withdrawal_request` naming an address both come here.
    """
    cooling_off = timedelta(hours=settings.PAYOUT_ADDRESS_COOLING_OFF_HOURS)
    entry, created = PayoutAddress.objects.get_or_create(
        user=user,
        address=address,
        defaults={"label": label, "source": source, "usable_from": timezone.now() + cooling_off},
    )
    if created:
        audit_record(
            action=AuditAction.PAYOUT_ADDRESS_REGISTER,
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


def payout_address_register(*, user: User, address: Any, source: str, label: str = "") -> tuple[PayoutAddress, bool]:
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
        return payout_address_record(user=user, address=address, source=source, label=label)
