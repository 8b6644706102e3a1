import approvals.exceptions
from common.errors import ApplicationError
from ops.exceptions import EmergencyStopped


class WithdrawalError(ApplicationError):
    code = "withdrawal_error"


class DepositConflict(ApplicationError):
    code = "deposit_conflict"
    status = 409


class InvalidSignature(ApplicationError):
    code = "invalid_signature"
    status = 401


class StaleWebhook(ApplicationError):
    code = "stale_timestamp"
    status = 400


class InvalidWebhook(ApplicationError):
    code = "invalid_webhook"
    status = 400


class WithdrawalNotFound(WithdrawalError):
    code = "withdrawal_not_found"
    status = 404


class InvalidDestination(WithdrawalError):
    code = "invalid_destination"
    status = 400


class DestinationRequired(WithdrawalError):
    code = "destination_required"
    status = 400


class WithdrawalLimitExceeded(WithdrawalError):
    code = "withdrawal_limit"
    status = 400


class InvalidTransition(WithdrawalError):
    code = "invalid_transition"
    status = 409


# Four eyes is the approvals leaf's: its refusal (own_request, same_approver, approver_required) is this one.
ApprovalRefused = approvals.exceptions.ApprovalRefused


# The emergency stop's one refusal (423 `emergency_stop`, as for bets): one class per code.
ProcessingHalted = EmergencyStopped


class PayoutInFlight(WithdrawalError):
    """The payout may be at the custodian: refunding now could refund something paid."""

    code = "payout_may_be_in_flight"
    status = 409


class PayoutError(Exception):
    """Raised by payout adapters (not an ApplicationError: processing translates it)."""


class PayoutRejected(PayoutError):
    """The custodian refused the payout for good (bad address, compliance, ...): fail and refund."""


class PayoutUnavailable(PayoutError):
    """The outcome is unknown (timeout, 5xx, network): keep PROCESSING and ask `status` later."""
