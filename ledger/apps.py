from django.apps import AppConfig


class LedgerConfig(AppConfig):
    # The system accounts (house, withdrawals:pending, external:*) are data: migration 0004 makes them.
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"
