"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_rules_in_database")]
    operations = [truncate_guard("ledger", ["ledger_accounts", "ledger_batches", "ledger_entries"])]
