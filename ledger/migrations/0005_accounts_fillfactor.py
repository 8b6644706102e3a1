"""Leave room in each `ledger_accounts` page on PostgreSQL so a balance UPDATE (balance_u: a column no
index covers) is a HOT update that touches none of the table's indexes: a settlement moves one
balance per paid user in one UPDATE, and every bet moves its round's pool row.

Existing pages keep their fill until rewritten (VACUUM FULL); new and updated rows use the room.
Storage parameters are not part of Django's model state. SQLite: nothing to do.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ledger_accounts SET (fillfactor = 50)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ledger_accounts RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_system_accounts")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
