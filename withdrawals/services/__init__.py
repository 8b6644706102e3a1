"""The doors of deposits and withdrawals; every movement of money here is one `ledger_post`.

    money.py        the ledger side: accounts, batches and idempotency keys of each movement
    deposits.py     deposit_credit (once per tx id), deposits_credit_many (many at once: seed),
                    deposit_webhook_credit, deposit_simulate, deposit_intent_create
    addresses.py    the payout address book: payout_address_register
    withdrawals.py  withdrawal_request, withdrawal_cancel, withdrawal_approve (four-eyes)
    payouts.py      the payout state machine: withdrawals_process, withdrawal_complete, withdrawal_fail
                    (refund + email), withdrawal_resolve

The webhook's transport (X-Signature, raw-body JSON, timestamp freshness) is not a service: it is
`withdrawals.webhooks`, called by the API view before `deposit_webhook_credit`.
Import from here (`from withdrawals.services import withdrawal_request`); the modules are the layout.
"""

from withdrawals.services.addresses import destination_validate, payout_address_register
from withdrawals.services.deposits import (
    DepositCredit,
    deposit_credit,
    deposit_intent_create,
    deposit_simulate,
    deposit_webhook_credit,
    deposits_credit_many,
    simulated_wallet_address,
)
from withdrawals.services.payouts import (
    ProcessReport,
    Resolution,
    withdrawal_complete,
    withdrawal_fail,
    withdrawal_resolve,
    withdrawals_process,
)
from withdrawals.services.withdrawals import (
    REQUEST_WITHDRAWAL_ON_BEHALF,
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_is_approved,
    withdrawal_on_behalf_authorize,
    withdrawal_request,
    withdrawal_request_digest,
)

__all__ = [
    "REQUEST_WITHDRAWAL_ON_BEHALF",
    "DepositCredit",
    "ProcessReport",
    "Resolution",
    "deposit_credit",
    "deposit_intent_create",
    "deposit_simulate",
    "deposit_webhook_credit",
    "deposits_credit_many",
    "destination_validate",
    "payout_address_register",
    "simulated_wallet_address",
    "withdrawal_approve",
    "withdrawal_cancel",
    "withdrawal_complete",
    "withdrawal_fail",
    "withdrawal_is_approved",
    "withdrawal_on_behalf_authorize",
    "withdrawal_request",
    "withdrawal_request_digest",
    "withdrawal_resolve",
    "withdrawals_process",
]
