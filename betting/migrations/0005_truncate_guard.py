"""TRUNCATE of this app's money tables is refused on PostgreSQL (see common.truncate_guard)."""

from django.db import migrations

from common.truncate_guard import truncate_guard


class Migration(migrations.Migration):
    dependencies = [("betting", "0004_bet_place_on_behalf_permission")]
    operations = [truncate_guard("betting", ["bets"])]
