"""The emergency stop, circuit breaker and maintenance rows (off) are data.

Until this release ops.apps made them on every post_migrate, a backward migrate included, which
crashed once ops_switches was gone. The names are written out here, not read from the model: a
migration is history and must not change when the model does.

Backwards: nothing. A rollback usually runs under the emergency stop or maintenance; deleting the
rows would switch that off in the middle of it, and the previous release expects the rows to exist.
`migrate ops zero` drops the table with them.
"""

from django.db import migrations

SWITCH_NAMES = ("emergency_stop", "circuit_breaker", "maintenance")


def switch_rows_create(apps, schema_editor):
    OpsSwitch = apps.get_model("ops", "OpsSwitch")
    using = schema_editor.connection.alias if schema_editor else "default"
    for name in SWITCH_NAMES:
        OpsSwitch.objects.using(using).get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("ops", "0005_auditevent_moved_to_audit")]
    operations = [migrations.RunPython(switch_rows_create, migrations.RunPython.noop, elidable=False)]
