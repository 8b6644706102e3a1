from common.errors import ApplicationError


class WithdrawalError(ApplicationError):
    code = "withdrawal_error"


class DepositConflict(ApplicationError):
    code = "deposit_conflict"
    status = 409
