"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("rounds", "0003_bets_fillfactor")]
    operations = [truncate_guard("rounds", ["rounds", "round_settlements"])]
