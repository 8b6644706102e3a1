"""Every action the audit log knows: one constant each, so a name is spelled once and checked.

`audit_record` refuses an action that is not here, so a typo is a failing test, not a row
nobody's query finds. The values are the strings already stored in `audit_events.action`.
"""

from django.db import models


class AuditAction(models.TextChoices):
    # betting
    BET_PLACE_ON_BEHALF = "bet.place_on_behalf"
    # risk
    RISK_LIMITS_CHANGE = "risk.limits.change"
    RISK_USER_LIMIT_SET = "risk.user_limit.set"
    RISK_SELF_EXCLUSION = "risk.self_exclusion"
    # ledger
    LEDGER_MANUAL_CREDIT = "ledger.manual_credit"
    LEDGER_MANUAL_DEBIT = "ledger.manual_debit"
    # rounds
    ROUND_OPEN = "round.open"
    ROUND_LOCK = "round.lock"
    ROUND_SETTLE = "round.settle"
    ROUND_VOID = "round.void"
    ROUND_OVERDUE = "round.overdue"
    # withdrawals and deposits
    DEPOSIT_CREDIT = "deposit.credit"
    PAYOUT_ADDRESS_REGISTER = "payout_address.register"
    WITHDRAWAL_REQUEST = "withdrawal.request"
    WITHDRAWAL_CANCEL = "withdrawal.cancel"
    WITHDRAWAL_APPROVE = "withdrawal.approve"
    WITHDRAWAL_COMPLETE = "withdrawal.complete"
    WITHDRAWAL_FAIL = "withdrawal.fail"
    WITHDRAWAL_RECONCILE_REQUESTED = "withdrawal.reconcile_requested"
    WITHDRAWAL_PROCESS_NOW = "withdrawal.process_now"
    # market data
    MARKETDATA_SET_CLOSE = "marketdata.set_close"
    MARKETDATA_CALENDAR_OVERRIDE = "marketdata.calendar_override"
    MARKETDATA_SOURCE_CHANGE = "marketdata.source_change"
    MARKETDATA_SOURCE_TEST = "marketdata.source_test"
    MARKETDATA_CLOSE_QUORUM = "marketdata.close_quorum"
    MARKETDATA_TICKS_ARCHIVE = "marketdata.ticks_archive"
    # operations
    EMERGENCY_STOP_ON = "ops.emergency_stop.on"
    EMERGENCY_STOP_OFF = "ops.emergency_stop.off"
    MAINTENANCE_ON = "ops.maintenance.on"
    MAINTENANCE_OFF = "ops.maintenance.off"
    CIRCUIT_BREAKER_OPEN = "ops.circuit_breaker.open"
    CIRCUIT_BREAKER_RESET = "ops.circuit_breaker.reset"
    BACKUP = "ops.backup"
    RESTORE = "ops.restore"
    # four eyes (approvals)
    APPROVAL_REQUEST = "approval.request"
    APPROVAL_GRANT = "approval.grant"
    APPROVAL_CANCEL = "approval.cancel"
    APPROVAL_EXPIRE = "approval.expire"
