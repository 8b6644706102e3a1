from common.errors import ApplicationError


class OpsError(ApplicationError):
    code = "ops_error"


class Halted(ApplicationError):
    """Betting or withdrawal processing refused because an operator or the breaker halted it.

    423 Locked, from every door (bets, withdrawal processing, the admin, commands): the
    request itself was fine; retrying after the stop is lifted may succeed. One class per code.
    """

    code = "halted"
    status = 423


class EmergencyStopped(Halted):
    """The emergency stop is on: bets and withdrawal processing are refused."""

    code = "emergency_stop"


class CircuitBreakerOpen(Halted):
    """The circuit breaker is open: bets are refused until staff reset it."""

    code = "circuit_breaker"


HALT_REFUSALS: dict[str, type[Halted]] = {
    EmergencyStopped.code: EmergencyStopped,
    CircuitBreakerOpen.code: CircuitBreakerOpen,
}


def halt_refusal(*, code: str, detail: str) -> Halted:
    """The refusal for an ops.selectors.Halt's `code` ("emergency_stop" or "circuit_breaker")."""
    return HALT_REFUSALS.get(code, Halted)(detail)


class BackupInvalid(ApplicationError):
    code = "backup_invalid"
    status = 400


class RestoreRefused(ApplicationError):
    code = "restore_refused"
    status = 409


class LossNotConfirmed(RestoreRefused):
    """The restore would erase `loss`, and the operator has not confirmed that list (its SHA-256)."""

    code = "loss_not_confirmed"

    def __init__(self, detail: str, *, loss):
        super().__init__(detail)
        self.loss = loss
