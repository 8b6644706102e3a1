"""Reads of the limits: the snapshot bet_place checks against, kept in process memory.

Why a cache: bet_place is the hot path, and the limits change a few times a year. The snapshot
(house limits, every override and self-exclusion still in force) is loaded with three queries and
then served from memory. It is reloaded when

- the version key in the Django cache (`risk:limits:version`) differs from the one it was loaded
  under: every change (risk.services) clears this process's snapshot at once and sets a new version
  when it commits, so every process sharing the cache (Redis in production) sees it on its next bet;
- or it is older than RISK_LIMITS_MAX_AGE_SECONDS: the safety net for processes that do not share
  the cache (the embedded LocMemCache: a `risk_limits` command run beside `make run`).

Reading the version is a cache GET (no database query; in-process with LocMemCache).
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from risk.models import RiskLimits, SelfExclusion, UserLimit

VERSION_KEY = "risk:limits:version"
LIMITS_PK = 1


@dataclass(frozen=True)
class Limits:
    """The limits one bettor is held to (None = no limit)."""

    min_stake_u: int
    max_stake_u: int
    max_user_round_u: int | None
    max_user_day_u: int | None
    max_round_pool_u: int | None
    max_side_ratio: int | None
    side_ratio_floor_u: int
    personal: bool = False  # a per-user override changed at least one of them


@dataclass(frozen=True)
class Override:
    starts_at: datetime
    ends_at: datetime
    max_stake_u: int | None
    max_user_round_u: int | None
    max_user_day_u: int | None


@dataclass(frozen=True)
class LimitsSnapshot:
    house: Limits
    overrides: dict[Any, tuple[Override, ...]] = field(default_factory=dict)  # user id -> newest first
    exclusions: dict[Any, tuple[tuple[datetime, datetime], ...]] = field(default_factory=dict)  # user id -> periods

    def excluded_until(self, *, user_id: Any, now: datetime) -> datetime | None:
        """The end of the self-exclusion `user_id` is under at `now` (the latest, if several), else None."""
        ends = [end for start, end in self.exclusions.get(_key(user_id), ()) if start <= now < end]
        return max(ends) if ends else None

    def for_user(self, *, user_id: Any, now: datetime) -> Limits:
        """The house limits with the newest override in force at `now` applied."""
        for override in self.overrides.get(_key(user_id), ()):
            if override.starts_at <= now < override.ends_at:
                return _with_override(self.house, override)
        return self.house


def _key(user_id: Any) -> str:
    return str(user_id)


def _with_override(house: Limits, override: Override) -> Limits:
    def pick(own: int | None, default: int | None) -> int | None:
        return default if own is None else own

    max_stake_u = pick(override.max_stake_u, house.max_stake_u)
    return Limits(
        min_stake_u=house.min_stake_u,
        max_stake_u=max_stake_u if max_stake_u is not None else house.max_stake_u,
        max_user_round_u=pick(override.max_user_round_u, house.max_user_round_u),
        max_user_day_u=pick(override.max_user_day_u, house.max_user_day_u),
        max_round_pool_u=house.max_round_pool_u,
        max_side_ratio=house.max_side_ratio,
        side_ratio_floor_u=house.side_ratio_floor_u,
        personal=True,
    )


def house_limits_default() -> Limits:
    """The limits before anyone set them: the BET_* settings (their environment values)."""
    return Limits(
        min_stake_u=settings.BET_MIN_STAKE_U,
        max_stake_u=settings.BET_MAX_STAKE_U,
        max_user_round_u=settings.BET_MAX_USER_ROUND_STAKE_U,
        max_user_day_u=None,
        max_round_pool_u=None,
        max_side_ratio=None,
        side_ratio_floor_u=0,
    )


def house_limits_from_row(row: RiskLimits) -> Limits:
    return Limits(
        min_stake_u=row.min_stake_u,
        max_stake_u=row.max_stake_u,
        max_user_round_u=row.max_user_round_u,
        max_user_day_u=row.max_user_day_u,
        max_round_pool_u=row.max_round_pool_u,
        max_side_ratio=row.max_side_ratio,
        side_ratio_floor_u=row.side_ratio_floor_u,
    )


def risk_limits_row() -> RiskLimits | None:
    return RiskLimits.objects.filter(pk=LIMITS_PK).first()


def house_limits_get() -> Limits:
    """The house limits from the database (uncached): the row, else the settings."""
    row = risk_limits_row()
    return house_limits_default() if row is None else house_limits_from_row(row)


def limits_snapshot_load(*, now: datetime | None = None) -> LimitsSnapshot:
    """Three queries: the house row, the overrides and exclusions not yet over."""
    now = now or timezone.now()
    overrides: dict[Any, list[Override]] = {}
    for row in UserLimit.objects.filter(ends_at__gt=now).order_by("-created_at", "-id"):
        overrides.setdefault(_key(row.user_id), []).append(
            Override(
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                max_stake_u=row.max_stake_u,
                max_user_round_u=row.max_user_round_u,
                max_user_day_u=row.max_user_day_u,
            )
        )
    exclusions: dict[Any, list[tuple[datetime, datetime]]] = {}
    for user_id, starts_at, ends_at in SelfExclusion.objects.filter(ends_at__gt=now).values_list(
        "user_id", "starts_at", "ends_at"
    ):
        exclusions.setdefault(_key(user_id), []).append((starts_at, ends_at))
    return LimitsSnapshot(
        house=house_limits_get(),
        overrides={user: tuple(rows) for user, rows in overrides.items()},
        exclusions={user: tuple(rows) for user, rows in exclusions.items()},
    )


class _Cached:
    """This process's snapshot, the version it was loaded under, and when."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: LimitsSnapshot | None = None
        self.version: Any = None
        self.loaded_at = 0.0


_cached = _Cached()


def _version_get() -> Any:
    try:
        return cache.get(VERSION_KEY)
    except Exception:  # noqa: BLE001 - a cache outage must not stop betting; the max age still applies
        return _cached.version


def limits_snapshot() -> LimitsSnapshot:
    """The snapshot every bet is checked against: from memory, reloaded on a new version or when too old."""
    version = _version_get()
    snapshot = _cached.snapshot
    fresh = time.monotonic() - _cached.loaded_at < settings.RISK_LIMITS_MAX_AGE_SECONDS
    if snapshot is not None and version == _cached.version and fresh:
        return snapshot
    with _cached.lock:
        snapshot = limits_snapshot_load()
        _cached.snapshot, _cached.version, _cached.loaded_at = snapshot, version, time.monotonic()
    return snapshot


def limits_snapshot_forget() -> None:
    """Drop this process's snapshot: the next bet reloads it (risk.services calls this on every change)."""
    with _cached.lock:
        _cached.snapshot = None


def self_exclusion_current(*, user_id: Any, now: datetime | None = None) -> SelfExclusion | None:
    """The self-exclusion in force for the user that ends last (from the database), or None."""
    now = now or timezone.now()
    return (
        SelfExclusion.objects.filter(user_id=user_id, starts_at__lte=now, ends_at__gt=now).order_by("-ends_at").first()
    )


def user_limits_in_force(*, now: datetime | None = None) -> Iterable[UserLimit]:
    now = now or timezone.now()
    return UserLimit.objects.filter(starts_at__lte=now, ends_at__gt=now).select_related("user")
