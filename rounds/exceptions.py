from common.errors import ApplicationError, ReasonRequired  # noqa: F401 - re-exported for rounds' callers


class RoundError(ApplicationError):
    code = "round_error"


class InvalidRoundCode(RoundError):
    code = "invalid_round_code"
    status = 400


class UnknownRound(RoundError):
    code = "unknown_round"
    status = 404


class MarketClosed(RoundError):
    code = "market_closed"
    status = 409


class InvalidTransition(RoundError):
    """The round is not in the state this step needs (OPEN -> LOCKED -> SETTLED only)."""

    code = "invalid_round_state"
    status = 409


class RoundNotOpen(InvalidTransition):
    """The round is LOCKED or SETTLED: it cannot be locked again and takes no bets."""

    code = "round_not_open"


class RoundNotLocked(InvalidTransition):
    code = "round_not_locked"


class RoundAlreadySettled(InvalidTransition):
    code = "round_already_settled"


class BettingClosed(RoundError):
    """The round is still OPEN but its lock time has passed (the lock task is late): checked on the clock."""

    code = "betting_closed"
    status = 409


class NoCurrentRound(RoundError):
    code = "no_current_round"
    status = 404


class NoOfficialClose(RoundError):
    code = "no_official_close"
    status = 409


class InvalidResult(RoundError):
    code = "invalid_result"
    status = 400


class PoolMismatch(RoundError):
    """The bets do not add up to the pool account: settle nothing until someone looks."""

    code = "pool_mismatch"
    status = 409
