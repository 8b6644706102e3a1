# The audit log moved out of ops into its own leaf app. The table `audit_events` is the one ops
# created (ops 0001); this migration only tells Django's state that `audit` now owns it, and ops
# 0005 drops it from ops' state. Neither touches the database, in either direction.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("ops", "0004_maintenance"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("action", models.CharField(db_index=True, max_length=64)),
                        ("object_type", models.CharField(blank=True, max_length=64)),
                        ("object_id", models.CharField(blank=True, db_index=True, max_length=128)),
                        ("reason", models.TextField(blank=True)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        (
                            "source",
                            models.CharField(
                                choices=[
                                    ("admin", "Admin"),
                                    ("cli", "Cli"),
                                    ("api", "Api"),
                                    ("beat", "Beat"),
                                    ("system", "System"),
                                    ("ops-token", "Ops Token"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("ts", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "audit_events", "ordering": ["-ts", "-id"]},
                ),
            ],
            database_operations=[],
        ),
    ]
