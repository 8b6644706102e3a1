"""The rounds' bettor count and largest stakes, filled from betting's running totals (reading them only)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rounds", "0006_running_totals"), ("betting", "0006_running_totals")]
    operations = [
        migrations.RunSQL(
            "UPDATE rounds SET "
            "bettors = (SELECT COUNT(*) FROM bet_totals t WHERE t.round_id = rounds.id), "
            "up_top_u = COALESCE((SELECT MAX(t.up_u) FROM bet_totals t WHERE t.round_id = rounds.id), 0), "
            "down_top_u = COALESCE((SELECT MAX(t.down_u) FROM bet_totals t WHERE t.round_id = rounds.id), 0), "
            "top_u = COALESCE((SELECT MAX(t.up_u + t.down_u) FROM bet_totals t WHERE t.round_id = rounds.id), 0)",
            reverse_sql=migrations.RunSQL.noop,  # the columns themselves go on the way back
        ),
    ]
