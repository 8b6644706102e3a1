"""A payout reference that is never reused, and the markers of the per-item payout state machine.

Rows that exist already keep the reference they were (or would have been) sent under, str(pk): the
custodian knows a sent one by that key, so `status` must still find it, and giving it a fresh UUID
would let a resumed PROCESSING row be sent a second time under a key the custodian has never seen.
New rows get a random UUID (the model default). The column stays nullable in this release so the
previous release, still serving during a rolling deploy, can insert rows (they are sent as str(pk),
exactly as that release sends them); a later release may backfill those and make it NOT NULL.

Backwards: refused while a PROCESSING withdrawal carries a UUID reference, because the previous code
would ask the custodian about str(pk) instead, find nothing, and send it again.
"""

from django.db import migrations, models
from django.db.models.functions import Cast

import withdrawals.models
from common.migration_refusal import MigrationRefused


def references_from_ids(apps, schema_editor):
    Withdrawal = apps.get_model("withdrawals", "Withdrawal")
    Withdrawal.objects.filter(payout_reference__isnull=True).update(
        payout_reference=Cast("id", output_field=models.CharField(max_length=64))
    )


def refuse_if_uuid_references_in_flight(apps, schema_editor):
    Withdrawal = apps.get_model("withdrawals", "Withdrawal")
    in_flight = [
        pk
        for pk, reference in Withdrawal.objects.filter(status="PROCESSING").values_list("id", "payout_reference")
        if reference not in (None, str(pk))
    ]
    if in_flight:
        raise MigrationRefused(
            f"withdrawals {in_flight} are PROCESSING under a UUID payout reference; the previous release would "
            "look them up by id and could pay them twice. Resolve them (process_withdrawals) before rolling back."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("withdrawals", "0004_payout_addresses"),
    ]

    operations = [
        migrations.AddField(
            model_name="withdrawal",
            name="payout_reference",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(references_from_ids, refuse_if_uuid_references_in_flight),
        migrations.AlterField(
            model_name="withdrawal",
            name="payout_reference",
            field=models.CharField(
                blank=True,
                default=withdrawals.models.payout_reference_new,
                editable=False,
                max_length=64,
                null=True,
                unique=True,
            ),
        ),
        migrations.AddField(
            model_name="withdrawal",
            name="send_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="withdrawal",
            name="needs_reconciliation",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="withdrawal",
            name="reconciliation_reason",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
    ]
