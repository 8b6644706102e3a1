from common.errors import ApplicationError


class LedgerError(ApplicationError):
    code = "ledger_error"


class UnbalancedBatch(LedgerError):
    code = "unbalanced_batch"


class InvalidAmount(LedgerError):
    code = "invalid_amount"


class UnknownAccount(LedgerError):
    code = "unknown_account"
    status = 404


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    status = 409


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"
    status = 422
