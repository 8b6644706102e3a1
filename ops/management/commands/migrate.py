"""Django's `migrate`, with a lock timeout on PostgreSQL and refusals as sentences.

Only this command sets the timeout, on its own connection and for its own run: bets and every other
transaction keep the server's default. A migration that cannot get its lock within
MIGRATION_LOCK_TIMEOUT seconds fails (its transaction rolls back) instead of waiting behind a long
transaction while every new query on that table queues behind the migration.
"""

from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import OperationalError, connections

from common.migration_refusal import MigrationRefused
from ops.migration_state import migrations_pending_forget

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout


@contextmanager
def migration_lock_timeout(connection):
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, false)", [f"{int(settings.MIGRATION_LOCK_TIMEOUT * 1000)}ms"]
        )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        except Exception:  # noqa: BLE001 - a broken connection is closed by Django anyway; the error above matters
            connection.close()


class Command(migrate.Command):
    help = migrate.Command.help + " On PostgreSQL each migration waits for a lock at most MIGRATION_LOCK_TIMEOUT s."

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        migrations_pending_forget()
        try:
            with migration_lock_timeout(connection):
                return super().handle(*args, **options)
        except MigrationRefused as exc:
            raise CommandError(
                f"Migration refused and rolled back, the database is as it was before that step: {exc}"
            ) from exc
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise CommandError(
                f"A migration waited more than {settings.MIGRATION_LOCK_TIMEOUT:g} s for a table lock that another "
                "transaction holds, and was rolled back (the migrations before it stay applied). Find the long "
                "transaction (pg_stat_activity), let it finish or end it, and run migrate again."
            ) from exc
        finally:
            migrations_pending_forget()
