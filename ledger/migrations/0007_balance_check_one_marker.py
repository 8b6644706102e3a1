"""The balance trigger marks the batch it just checked in one setting, not one setting per batch.

0002's trigger remembered each checked batch in its own custom setting (`ledger.checked_<batch>`). On
PostgreSQL 15 every new setting name stays in the session for its life and is sorted into the
session's table of settings, so a connection that posts many batches (seed's thousands, a web
worker's bets under CONN_MAX_AGE) makes each later commit slower: 5 000 deposits in one session,
commit 95 ms for the first 500 and 940 ms for the last. Now one setting, `ledger.checked_batch`,
holds the batch checked last: the deferred events of a batch's entries fire together (one INSERT of
them, in ledger_post, ledger_post_from_sql and ledger_post_many alike), so each batch is still summed
once; entries of batches interleaved in one transaction are summed again, never skipped.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_batch_must_balance() RETURNS trigger AS $$
DECLARE
    total bigint;
BEGIN
    -- The batch checked last in this transaction: its next entries need no second SUM.
    IF current_setting('ledger.checked_batch', true) = NEW.batch::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('ledger.checked_batch', NEW.batch::text, true);
    SELECT COALESCE(SUM(amount_u), 0) INTO total FROM ledger_entries WHERE batch = NEW.batch;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger batch % does not sum to zero (sum %)', NEW.batch, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""

REVERSE = r"""
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_non_user_accounts_index")]

    operations = [migrations.RunPython(forward, reverse)]
