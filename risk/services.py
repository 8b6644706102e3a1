"""Writes of risk: the house limits, per-user overrides, self-exclusions. Each audited, with a reason.

Every change clears this process's limits snapshot at once and, when it commits, sets a new
version in the Django cache, so every other process's next bet reloads it (risk.selectors).
"""

import contextlib
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.types import User
from risk.exceptions import InvalidLimit, InvalidPeriod
from risk.models import RiskLimits, SelfExclusion, UserLimit
from risk.selectors import (
    LIMITS_PK,
    VERSION_KEY,
    house_limits_get,
    limits_snapshot_forget,
    self_exclusion_current,
)

CHANGE_LIMITS = "risk.change_limits"
ADD_SELF_EXCLUSION = "risk.add_selfexclusion"

# The house limits a person may set, and whether each may be None ("no limit").
LIMIT_FIELDS: dict[str, bool] = {
    "min_stake_u": False,
    "max_stake_u": False,
    "max_user_round_u": True,
    "max_user_day_u": True,
    "max_round_pool_u": True,
    "max_side_ratio": True,
    "side_ratio_floor_u": False,
}
USER_LIMIT_FIELDS = ("max_stake_u", "max_user_round_u", "max_user_day_u")


def limits_changed() -> None:
    """Forget this process's snapshot now; publish a new version to every process once the change commits."""
    limits_snapshot_forget()

    def publish() -> None:
        limits_snapshot_forget()
        # A cache outage must not fail the change: the max age (RISK_LIMITS_MAX_AGE_SECONDS) still reaches them.
        with contextlib.suppress(Exception):
            cache.set(VERSION_KEY, uuid.uuid4().hex, None)

    transaction.on_commit(publish)


def _reason_require(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(f"{what} needs a reason.")
    return reason


def _person(acting_user: User | None, permission: str, what: str) -> User | None:
    # None = the shell without --actor: shell access is the authority (as everywhere in this project).
    if acting_user is not None:
        permission_require(acting_user, permission, detail=f"{what} needs the '{permission}' permission.")
    return acting_user if getattr(acting_user, "pk", None) else None


def _amount(name: str, value: Any, *, nullable: bool) -> int | None:
    if value is None:
        if nullable:
            return None
        raise InvalidLimit(f"{name} must be set (a whole number of micro-USDC).", field=name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > settings.MAX_AMOUNT_U * 1000:
        raise InvalidLimit(f"{name} must be a whole number from 0 to {settings.MAX_AMOUNT_U * 1000}, got {value!r}.")
    return value


def risk_limits_set(
    *, changes: dict[str, Any], reason: str, acting_user: User | None = None, source: str = "cli"
) -> RiskLimits:
    """Change some of the house limits (the others keep their value). Effective on the next bet.

    `changes`: {field: int or None (no limit)} over LIMIT_FIELDS. Audited with before and after.
    """
    person = _person(acting_user, CHANGE_LIMITS, "Changing the risk limits")
    reason = _reason_require(reason, "A change of the risk limits")
    unknown = sorted(set(changes) - set(LIMIT_FIELDS))
    if unknown:
        raise InvalidLimit(f"Unknown limit(s): {', '.join(unknown)}; known: {', '.join(LIMIT_FIELDS)}.")
    if not changes:
        raise InvalidLimit("No limit to change was given.")
    cleaned = {name: _amount(name, value, nullable=LIMIT_FIELDS[name]) for name, value in changes.items()}
    with transaction.atomic():
        row = RiskLimits.objects.select_for_update().filter(pk=LIMITS_PK).first()
        before = asdict(house_limits_get())
        before.pop("personal")
        if row is None:
            row = RiskLimits(pk=LIMITS_PK, **before)
        for name, value in cleaned.items():
            setattr(row, name, value)
        if row.min_stake_u < 1:
            raise InvalidLimit("min_stake_u must be at least 1 u.")
        if row.max_stake_u < row.min_stake_u:
            raise InvalidLimit(
                f"max_stake_u ({row.max_stake_u} u) must not be below min_stake_u ({row.min_stake_u} u)."
            )
        if row.max_stake_u > settings.MAX_AMOUNT_U:
            raise InvalidLimit(f"max_stake_u must not exceed MAX_AMOUNT_U ({settings.MAX_AMOUNT_U} u).")
        if row.max_side_ratio is not None and row.max_side_ratio < 1:
            raise InvalidLimit("max_side_ratio must be at least 1 (or empty: no cap).")
        row.reason = reason
        row.updated_by = person
        row.save()
        after = {name: getattr(row, name) for name in LIMIT_FIELDS}
        audit_record(
            action=AuditAction.RISK_LIMITS_CHANGE,
            source=source,
            actor=acting_user,
            object_type="risk_limits",
            object_id=LIMITS_PK,
            reason=reason,
            before=before,
            after=after,
        )
        limits_changed()
    return row


def user_limit_set(
    *,
    user: User,
    ends_at: datetime,
    reason: str,
    max_stake_u: int | None = None,
    max_user_round_u: int | None = None,
    max_user_day_u: int | None = None,
    starts_at: datetime | None = None,
    acting_user: User | None = None,
    source: str = "cli",
) -> UserLimit:
    """A per-user override until `ends_at` (None in a field keeps the house's limit). Audited."""
    person = _person(acting_user, CHANGE_LIMITS, "Setting a bettor's limits")
    reason = _reason_require(reason, "A per-user limit")
    starts_at = starts_at or timezone.now()
    if ends_at <= starts_at:
        raise InvalidPeriod(f"The override must end after it starts ({starts_at.isoformat()}).")
    values = {
        "max_stake_u": _amount("max_stake_u", max_stake_u, nullable=True),
        "max_user_round_u": _amount("max_user_round_u", max_user_round_u, nullable=True),
        "max_user_day_u": _amount("max_user_day_u", max_user_day_u, nullable=True),
    }
    if all(value is None for value in values.values()):
        raise InvalidLimit("Give at least one of max_stake_u, max_user_round_u, max_user_day_u.")
    with transaction.atomic():
        override = UserLimit.objects.create(
            user=user, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=person, **values
        )
        audit_record(
            action=AuditAction.RISK_USER_LIMIT_SET,
            source=source,
            actor=acting_user,
            object_type="user",
            object_id=user.pk,
            reason=reason,
            after={**values, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        )
        limits_changed()
    return override


def self_exclusion_create(
    *,
    user: User,
    days: Any,
    reason: str = "",
    acting_user: User | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> tuple[SelfExclusion, bool]:
    """Exclude `user` from betting for `days` days from now. Returns (exclusion, created).

    The bettor themself (`acting_user` None or the user) needs no permission; staff for someone
    else needs `risk.add_selfexclusion` and a reason. It can be extended, never shortened or
    lifted: a request that ends no later than the exclusion already in force answers that one
    (created False), so a retried request changes nothing. Withdrawals are not affected.
    """
    for_someone_else = acting_user is not None and acting_user.pk != user.pk
    if for_someone_else:
        _person(acting_user, ADD_SELF_EXCLUSION, "Excluding a bettor")
        reason = _reason_require(reason, "Excluding a bettor on their behalf")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= settings.SELF_EXCLUSION_MAX_DAYS:
        raise InvalidPeriod(f"days must be a whole number from 1 to {settings.SELF_EXCLUSION_MAX_DAYS}, got {days!r}.")
    now = now or timezone.now()
    ends_at = now + timedelta(days=days)
    with transaction.atomic():
        current = self_exclusion_current(user_id=user.pk, now=now)
        if current is not None and current.ends_at >= ends_at:
            return current, False
        exclusion = SelfExclusion.objects.create(
            user=user,
            starts_at=now,
            ends_at=ends_at,
            source=source,
            reason=(reason or "").strip(),
            created_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        audit_record(
            action=AuditAction.RISK_SELF_EXCLUSION,
            source=source,
            actor=acting_user if for_someone_else else user,
            object_type="user",
            object_id=user.pk,
            reason=exclusion.reason or "self-exclusion requested by the bettor",
            before={"ends_at": current.ends_at.isoformat()} if current else None,
            after={"starts_at": now.isoformat(), "ends_at": ends_at.isoformat(), "days": days},
        )
        limits_changed()
    return exclusion, True
