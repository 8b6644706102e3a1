"""The ledger's rules, held by the database as well as by ledger_post.

PostgreSQL: a deferred constraint trigger refuses, at commit, any batch whose
entries do not sum to zero; a trigger refuses UPDATE and DELETE of entries.
SQLite: a trigger refuses UPDATE of entries. SQLite has no deferred triggers,
so the zero-sum rule is not enforced by the database there (ledger_post and
ledger_audit still hold it), and DELETE is left open because Django's test
flush on SQLite deletes rows.
The system accounts are created by ledger.apps on post_migrate (also after a test flush).
"""

from django.db import migrations

POSTGRES_FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_batch_must_balance() RETURNS trigger AS $$
DECLARE
    total bigint;
    marker text := 'ledger.checked_' || NEW.batch;
BEGIN
    -- One check per batch per transaction, however many rows the batch has.
    IF current_setting(marker, true) = '1' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config(marker, '1', true);
    SELECT COALESCE(SUM(amount_u), 0) INTO total FROM ledger_entries WHERE batch = NEW.batch;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger batch % does not sum to zero (sum %)', NEW.batch, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_batch_must_balance();

CREATE OR REPLACE FUNCTION ledger_entries_are_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entries_immutable
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_are_immutable();
"""

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS ledger_entries_immutable ON ledger_entries;
DROP FUNCTION IF EXISTS ledger_entries_are_immutable();
DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries;
DROP FUNCTION IF EXISTS ledger_batch_must_balance();
"""

SQLITE_FORWARD = """
CREATE TRIGGER IF NOT EXISTS ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable: UPDATE refused'); END;
"""

SQLITE_REVERSE = "DROP TRIGGER IF EXISTS ledger_entries_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
