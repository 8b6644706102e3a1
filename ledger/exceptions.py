from common.errors import ApplicationError, IdempotencyConflict

# One class per code: a replayed key with another request is common.errors.IdempotencyConflict
# (422) everywhere; the name stays importable here because callers of ledger_post catch it.
__all__ = [
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidAmount",
    "LedgerError",
    "UnbalancedBatch",
    "UnknownAccount",
]


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
