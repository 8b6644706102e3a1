"""Every limit of a bet, in the three phases bet_place runs them (stake, bettor, pool).

A leaf: it imports only risk's own selectors and exceptions (and Django), so betting may call it
without a circle (the exposure reads in risk.exposure are what sit above betting).
"""

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from common.money import usdc_number
from risk.exceptions import (
    DailyStakeLimitExceeded,
    LimitExceeded,
    RoundPoolCapReached,
    RoundStakeLimitExceeded,
    SelfExcluded,
    SideImbalanceExceeded,
    StakeTooLarge,
    StakeTooSmall,
)
from risk.selectors import Limits, limits_snapshot


@dataclass(frozen=True)
class BetAttempt:
    """A bet being placed, as bet_place sees it.

    `up_pool_u` / `down_pool_u` are the round's pools *including* this stake (what the round's
    conditional UPDATE returned); 0 before it ran (the stake and bettor phases do not read them).
    """

    user_id: Any
    round_code: str
    side: str
    stake_u: int
    now: datetime
    up_pool_u: int = 0
    down_pool_u: int = 0


@dataclass(frozen=True)
class UserTotals:
    """The bettor's stakes *including* this one: in this round, and since midnight America/New_York."""

    round_u: int
    day_u: int


def market_day_start(now: datetime) -> datetime:
    """Midnight America/New_York of `now`'s market day: where a daily total starts."""
    local = now.astimezone(ZoneInfo(settings.MARKET_TIMEZONE))
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


def needs_user_totals(limits: Limits) -> bool:
    return limits.max_user_round_u is not None or limits.max_user_day_u is not None


# Every limit of a bet, in three phases of bet_place (each refusal rolls the whole bet back):
#   bet_stake_check   before the transaction: self-exclusion, minimum and maximum stake (memory only);
#   bet_user_check    under the bettor's row lock: their round and daily totals;
#   bet_pool_check    under the round row lock, the transaction's last statement: pool cap, side imbalance.


def bet_stake_check(*, user_id: Any, stake_u: int, now: datetime) -> Limits:
    """Self-exclusion, then the minimum and maximum stake; returns the limits the bet is held to.

    The limits come from the process's snapshot (risk.selectors.limits_snapshot): no query.
    """
    snapshot = limits_snapshot()
    until = snapshot.excluded_until(user_id=user_id, now=now)
    if until is not None:
        raise SelfExcluded(
            f"You are self-excluded from betting until {until.isoformat()}; the exclusion cannot be lifted early.",
            until=until.isoformat(),
            limit="self_exclusion",
            remaining_u=0,
        )
    limits = snapshot.for_user(user_id=user_id, now=now)
    whose = _whose(limits)
    if stake_u < limits.min_stake_u:
        raise _refusal(
            StakeTooSmall,
            f"stake_u must be at least {_u(limits.min_stake_u)} (the minimum stake).",
            "min_stake",
            limits.min_stake_u,
            remaining_u=None,
            min_stake_u=limits.min_stake_u,
        )
    if stake_u > limits.max_stake_u:
        raise _refusal(
            StakeTooLarge,
            f"stake_u must not exceed {_u(limits.max_stake_u)} ({whose} maximum stake).",
            "max_stake",
            limits.max_stake_u,
            remaining_u=limits.max_stake_u,
            max_stake_u=limits.max_stake_u,
        )
    return limits


def bet_user_check(limits: Limits, attempt: BetAttempt, totals: UserTotals) -> None:
    """The bettor's totals (this stake included) against their per-round and daily limits."""
    whose, stake_u = _whose(limits), attempt.stake_u
    if limits.max_user_round_u is not None and totals.round_u > limits.max_user_round_u:
        remaining_u = max(0, limits.max_user_round_u - (totals.round_u - stake_u))
        raise _refusal(
            RoundStakeLimitExceeded,
            f"Your total stake in round {attempt.round_code} would be {_u(totals.round_u)}; "
            f"{whose} per-round limit is {_u(limits.max_user_round_u)}, {_u(remaining_u)} left.",
            "max_user_round",
            limits.max_user_round_u,
            remaining_u=remaining_u,
            round_total_u=totals.round_u - stake_u,
        )
    if limits.max_user_day_u is not None and totals.day_u > limits.max_user_day_u:
        remaining_u = max(0, limits.max_user_day_u - (totals.day_u - stake_u))
        raise _refusal(
            DailyStakeLimitExceeded,
            f"Your total stake today (America/New_York) would be {_u(totals.day_u)}; {whose} daily limit "
            f"is {_u(limits.max_user_day_u)}, {_u(remaining_u)} left.",
            "max_user_day",
            limits.max_user_day_u,
            remaining_u=remaining_u,
            day_total_u=totals.day_u - stake_u,
        )


def bet_pool_check(limits: Limits, attempt: BetAttempt) -> None:
    """The round's pools (this stake included) against the round pool cap and the side imbalance cap."""
    stake_u = attempt.stake_u
    pool_u = attempt.up_pool_u + attempt.down_pool_u
    if limits.max_round_pool_u is not None and pool_u > limits.max_round_pool_u:
        remaining_u = max(0, limits.max_round_pool_u - (pool_u - stake_u))
        raise _refusal(
            RoundPoolCapReached,
            f"Round {attempt.round_code}'s pool would be {_u(pool_u)}; the round pool cap is "
            f"{_u(limits.max_round_pool_u)}, {_u(remaining_u)} left.",
            "max_round_pool",
            limits.max_round_pool_u,
            remaining_u=remaining_u,
        )
    if limits.max_side_ratio is not None and pool_u > limits.side_ratio_floor_u:
        side_u, other_u = attempt.up_pool_u, attempt.down_pool_u
        if attempt.side != "UP":
            side_u, other_u = other_u, side_u
        cap_u = limits.max_side_ratio * other_u
        if side_u > cap_u:
            remaining_u = max(0, cap_u - (side_u - stake_u))
            raise _refusal(
                SideImbalanceExceeded,
                f"{attempt.side} would hold {_u(side_u)} against {_u(other_u)}; a side may not exceed "
                f"{limits.max_side_ratio} x the other once the pool is above {_u(limits.side_ratio_floor_u)} "
                f"(the side imbalance cap), {_u(remaining_u)} left on {attempt.side}.",
                "max_side_ratio",
                cap_u,
                remaining_u=remaining_u,
                max_side_ratio=limits.max_side_ratio,
            )


def _whose(limits: Limits) -> str:
    return "your personal" if limits.personal else "the"


def _u(amount_u: int) -> str:
    return f"{amount_u} u ({usdc_number(amount_u)} USDC)"


def _refusal(
    cls: type[LimitExceeded], detail: str, limit: str, limit_u: int, *, remaining_u: int | None, **extra: Any
) -> LimitExceeded:
    body: dict[str, Any] = {"limit": limit, "limit_u": limit_u, **extra}
    if remaining_u is not None:
        body["remaining_u"] = remaining_u
    return cls(detail, **body)
