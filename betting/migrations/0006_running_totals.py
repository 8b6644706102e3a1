"""bet_totals: each bettor's running stakes per round and side, filled from the bets already placed."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('betting', '0005_truncate_guard'),
        ('rounds', '0006_running_totals'),
    ]

    operations = [
        migrations.CreateModel(
            name='BettorRoundTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('up_u', models.BigIntegerField(default=0)),
                ('down_u', models.BigIntegerField(default=0)),
                ('round', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rounds.round')),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'bet_totals',
                'constraints': [models.UniqueConstraint(fields=('round', 'user'), name='bet_total_one_per_round_and_user'), models.CheckConstraint(condition=models.Q(('down_u__gte', 0), ('up_u__gte', 0)), name='bet_total_non_negative')],
            },
        ),
        migrations.RunSQL(
            "INSERT INTO bet_totals (round_id, user_id, up_u, down_u) "
            "SELECT round_id, user_id, SUM(CASE WHEN side = 'UP' THEN stake_u ELSE 0 END), "
            "SUM(CASE WHEN side = 'DOWN' THEN stake_u ELSE 0 END) FROM bets GROUP BY round_id, user_id",
            reverse_sql=migrations.RunSQL.noop,  # the table itself goes on the way back
        ),
    ]
