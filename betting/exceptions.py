"""Why a bet is refused. Each refusal has a stable `code`; nothing is written when one is raised.

The round's own refusals (round_not_open, betting_closed, no_current_round, unknown_round) are
rounds.exceptions, raised by rounds.services.round_pool_raise; a bad key or a replayed one with
another request, and a missing permission, are common.errors (one class per code).
"""

from common.errors import ApplicationError
from ops.exceptions import Halted

# The limits' refusals are risk's (risk.checks.bet_limits_check); named here too for callers that knew them here.
from risk.exceptions import RoundStakeLimitExceeded as RoundStakeLimitExceeded
from risk.exceptions import StakeTooLarge as StakeTooLarge
from risk.exceptions import StakeTooSmall as StakeTooSmall


class BettingError(ApplicationError):
    code = "betting_error"


# An emergency stop or the circuit breaker is on: ops' refusals, 423 with code "emergency_stop" or
# "circuit_breaker" from every door (ops.exceptions.halt_refusal picks the class for a Halt's code).
BettingHalted = Halted


class InvalidSide(BettingError):
    code = "invalid_side"
    status = 400


class UnknownBet(BettingError):
    code = "unknown_bet"
    status = 404
