"""A BEFORE TRUNCATE trigger for the money tables (PostgreSQL), used by each app's own migration.

Row triggers (ledger_entries' immutability, the zero-sum rule) do not fire on TRUNCATE, so the
tables' owner could empty the ledger in one statement. This statement trigger refuses it unless the
session has said on purpose that it means it: `SET updown.allow_truncate = 'on'`. Only the test
suite's flush between transactional tests does that (tests/conftest.py); an operator never should
(a restore goes through pg_restore, which drops and recreates tables instead). SQLite has no
TRUNCATE. Migrations call this, so its SQL is history: change it only together with a new migration.
Run the application as a role that does not own the tables (README, "Database roles"):
a non-owner cannot TRUNCATE without the TRUNCATE privilege, which the app role is never granted.
"""

from django.db import migrations

ALLOW_SETTING = "updown.allow_truncate"


def truncate_guard(app_label: str, tables: list[str]) -> migrations.RunPython:
    function = f"{app_label}_refuse_truncate"
    forward_sql = [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            IF current_setting('{ALLOW_SETTING}', true) = 'on' THEN
                RETURN NULL;
            END IF;
            RAISE EXCEPTION 'TRUNCATE % refused: money tables are never emptied', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation',
                      HINT = 'Rows leave these tables only through the application''s services.';
        END
        $$ LANGUAGE plpgsql;
        """,
        *(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
            for table in tables
        ),
    ]
    reverse_sql = [
        *(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};" for table in tables),
        f"DROP FUNCTION IF EXISTS {function}();",
    ]

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in forward_sql:
                schema_editor.execute(statement, params=None)

    def reverse(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in reverse_sql:
                schema_editor.execute(statement, params=None)

    return migrations.RunPython(forward, reverse)
