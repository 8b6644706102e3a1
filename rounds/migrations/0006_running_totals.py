"""Who holds a round's pools: the bettor count and the largest stakes, kept by round_pool_raise."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rounds', '0005_receipts'),
    ]

    operations = [
        migrations.AddField(
            model_name='round',
            name='bettors',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='round',
            name='down_top_u',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='round',
            name='top_u',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='round',
            name='up_top_u',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
    ]
