"""A partial index of the accounts that are not a user's cash: what tvl_get sums, in O(rounds)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_accounts_fillfactor'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='account',
            index=models.Index(condition=models.Q(('kind', 'user_cash'), _negated=True), fields=['kind'], name='ledger_account_non_user'),
        ),
    ]
