"""Why a bet is refused. Each refusal has a stable `code`; nothing is written when one is raised."""

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


class NoCurrentRound(BettingError):
    code = "no_current_round"
    status = 404


class RoundNotOpen(BettingError):
    """The round is LOCKED or SETTLED."""

    code = "round_not_open"
    status = 409


class BettingClosed(BettingError):
    """The round is still OPEN but its lock time has passed (the lock task is late): checked on the clock."""

    code = "betting_closed"
    status = 409


class IdempotencyConflict(BettingError):
    code = "idempotency_conflict"
    status = 422


class InvalidIdempotencyKey(BettingError):
    code = "invalid_idempotency_key"
    status = 400


class UnknownBet(BettingError):
    code = "unknown_bet"
    status = 404


class ActingForbidden(BettingError):
    """Only a staff user with `betting.place_bet_on_behalf` (the operator role) may bet for another user."""

    code = "permission_denied"
    status = 403
