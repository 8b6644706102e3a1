"""The accounts the system posts to (house, withdrawals:pending, the two world accounts) are data.

Until this release ledger.apps made them on every post_migrate, a backward migrate included, which
crashed once ledger_accounts was gone. Codes and kinds are written out here, not imported from
ledger.models: a migration is history and must not change when the model does.

Backwards: nothing. The rows hold balances and entries point at them (PROTECT), and the previous
release expects them to exist; `migrate ledger zero` drops the table with them.
"""

from django.db import migrations

SYSTEM_ACCOUNTS = (
    ("house", "house"),
    ("withdrawals:pending", "pending"),
    ("external:deposits", "external"),
    ("external:withdrawals", "external"),
)


def system_accounts_create(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    using = schema_editor.connection.alias if schema_editor else "default"
    for code, kind in SYSTEM_ACCOUNTS:
        Account.objects.using(using).get_or_create(code=code, defaults={"kind": kind})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_truncate_guard")]
    operations = [migrations.RunPython(system_accounts_create, migrations.RunPython.noop, elidable=False)]
