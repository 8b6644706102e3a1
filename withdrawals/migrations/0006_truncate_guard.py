"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("withdrawals", "0003_withdrawal_idempotency_key")]
    operations = [truncate_guard("withdrawals", ["withdrawals", "deposits"])]
