"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("withdrawals", "0005_payout_reference")]
    operations = [truncate_guard("withdrawals", ["withdrawals", "deposits"])]
