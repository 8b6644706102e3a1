"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("betting", "0003_alter_bet_round_alter_bet_user")]
    operations = [truncate_guard("betting", ["bets"])]
