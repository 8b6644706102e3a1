# AuditEvent now lives in the `audit` app (audit 0001 takes it over in Django's state); the table
# `audit_events` stays where it is, so nothing is done to the database either way.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0004_maintenance"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
