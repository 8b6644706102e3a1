from common.errors import ApplicationError


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


class RoundAlreadySettled(InvalidTransition):
    code = "round_already_settled"


class NoOfficialClose(RoundError):
    code = "no_official_close"
    status = 409


class InvalidResult(RoundError):
    code = "invalid_result"
    status = 400


class ReasonRequired(RoundError):
    code = "reason_required"
    status = 400


class RoundPermissionDenied(RoundError):
    code = "permission_denied"
    status = 403


class PoolMismatch(RoundError):
    """The bets do not add up to the pool account: settle nothing until someone looks."""

    code = "pool_mismatch"
    status = 409
