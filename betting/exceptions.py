"""Why a bet is refused. Each refusal has a stable `code`; nothing is written when one is raised.

The round's own refusals (round_not_open, betting_closed, no_current_round, unknown_round) are
rounds.exceptions, raised by rounds.services.round_pool_raise; a bad key or a replayed one with
another request, and a missing permission, are common.errors (one class per code).
"""

from common.errors import ApplicationError
from ops.exceptions import Halted


class BettingError(ApplicationError):
    code = "betting_error"


# An emergency stop or the circuit breaker is on: ops' refusals, 423 with code "emergency_stop" or
# "circuit_breaker" from every door (ops.exceptions.halt_refusal picks the class for a Halt's code).
BettingHalted = Halted


class InvalidSide(BettingError):
    code = "invalid_side"
    status = 400


class StakeTooSmall(BettingError):
    code = "stake_too_small"
    status = 400


class StakeTooLarge(BettingError):
    code = "stake_too_large"
    status = 400


class RoundStakeLimitExceeded(BettingError):
    """The caller's total stake in this round would pass BET_MAX_USER_ROUND_STAKE_U."""

    code = "round_stake_limit_exceeded"
    status = 409


class UnknownBet(BettingError):
    code = "unknown_bet"
    status = 404
