"""Why a bet is over a limit. One class per stable `code`; each refusal's sentence names the limit,
and its body carries `limit`, `limit_u` and `remaining_u` (how much more the bettor may stake under it).

Raised by risk.checks.bet_limits_check inside bet_place's transaction: nothing is written.
"""

from common.errors import ApplicationError


class RiskError(ApplicationError):
    code = "risk_error"


class LimitExceeded(RiskError):
    code = "limit_exceeded"
    status = 409


class StakeTooSmall(LimitExceeded):
    code = "stake_too_small"
    status = 400


class StakeTooLarge(LimitExceeded):
    code = "stake_too_large"
    status = 400


class RoundStakeLimitExceeded(LimitExceeded):
    """The bettor's total stake in this round would pass their per-round limit."""

    code = "round_stake_limit_exceeded"


class DailyStakeLimitExceeded(LimitExceeded):
    """The bettor's total stake today (America/New_York) would pass their daily limit."""

    code = "daily_stake_limit_exceeded"


class RoundPoolCapReached(LimitExceeded):
    code = "round_pool_cap_reached"


class SideImbalanceExceeded(LimitExceeded):
    code = "side_imbalance_exceeded"


class SelfExcluded(RiskError):
    """The bettor excluded themself (or staff did for them) until `until`: no bet until then."""

    code = "self_excluded"
    status = 403


class InvalidLimit(RiskError):
    code = "invalid_limit"
    status = 400


class InvalidPeriod(RiskError):
    code = "invalid_period"
    status = 400
