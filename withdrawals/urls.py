from django.urls import path

from withdrawals.apis import (
    DepositIntentsApi,
    DepositsApi,
    DepositWebhookApi,
    PayoutAddressesApi,
    SimulateDepositWebhookApi,
    WithdrawalCancelApi,
    WithdrawalDetailApi,
    WithdrawalsApi,
)

urlpatterns = [
    path("withdrawals", WithdrawalsApi.as_view(), name="withdrawals"),
    path("withdrawals/<int:withdrawal_id>", WithdrawalDetailApi.as_view(), name="withdrawal-detail"),
    path("withdrawals/<int:withdrawal_id>/cancel", WithdrawalCancelApi.as_view(), name="withdrawal-cancel"),
    path("me/payout-addresses", PayoutAddressesApi.as_view(), name="payout-addresses"),
    path("deposits", DepositsApi.as_view(), name="deposits"),
    path("deposits/intents", DepositIntentsApi.as_view(), name="deposit-intents"),
    path("deposits/webhook", DepositWebhookApi.as_view(), name="deposit-webhook"),
]

# The operating manual's own paths (seeds/000 "User Support Operations").
runbook_urlpatterns = [
    path("withdrawals", WithdrawalsApi.as_view(), name="withdrawals"),
    path("simulate/deposit_webhook", SimulateDepositWebhookApi.as_view(), name="simulate-deposit-webhook"),
]
