"""Walking the migration graph in tests: the schema by introspection, a day of money, the walk itself."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ops.migration_state import migrations_pending_forget

PROJECT_APPS = ["audit", "betting", "ledger", "marketdata", "ops", "risk", "rounds", "withdrawals"]
ADDRESS = "0x" + "7a" * 20
# Weekdays of September 2025 (no market holiday among them): one fresh round per played day.
TRADING_DAYS = [f"202509{day:02d}" for day in (8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 22, 23, 24, 25, 26, 29, 30)]


def schema_snapshot() -> dict:
    """Tables, columns, indexes and constraints (and on PostgreSQL the triggers, trigger functions and
    storage parameters; on SQLite the triggers) as plain data, to compare two databases exactly."""
    introspection = connection.introspection
    snapshot: dict = {}
    with connection.cursor() as cursor:
        for table in sorted(introspection.table_names(cursor)):
            columns = sorted(
                (c.name, str(c.type_code), c.null_ok, str(c.default), getattr(c, "collation", None))
                for c in introspection.get_table_description(cursor, table)
            )
            constraints = {
                name: {key: (sorted(value) if key == "columns" and value else value) for key, value in info.items()}
                for name, info in introspection.get_constraints(cursor, table).items()
            }
            snapshot[table] = {"columns": columns, "constraints": constraints}
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY 1, 2"
            )
            snapshot["__triggers__"] = cursor.fetchall()
            cursor.execute(
                "SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
            )
            snapshot["__functions__"] = cursor.fetchall()
            cursor.execute(
                "SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND reloptions IS NOT NULL ORDER BY 1"
            )
            snapshot["__reloptions__"] = cursor.fetchall()
        else:
            cursor.execute("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY 1, 2")
            snapshot["__triggers__"] = cursor.fetchall()
    return snapshot


def schema_diff(before: dict, after: dict) -> list[str]:
    """Readable differences, so a failing round trip says which table and what."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: fresh={before.get(key)!r}\n   after={after.get(key)!r}")
    return lines


def migrate(*args: str) -> int:
    """`migrate ARGS` as an operator runs it; returns how many migrations it applied or unapplied."""
    executor = MigrationExecutor(connection)
    if args:
        app, target = args
        targets = [(app, None if target == "zero" else target)]
    else:
        targets = executor.loader.graph.leaf_nodes()
    steps = len(executor.migration_plan(targets))
    call_command("migrate", *args, verbosity=0, stdout=io.StringIO())
    migrations_pending_forget()
    return steps


def latest_and_previous(app: str) -> tuple[str, str]:
    graph = MigrationExecutor(connection).loader.graph
    (latest,) = [name for leaf_app, name in graph.leaf_nodes() if leaf_app == app]
    parents = [name for parent_app, name in graph.node_map[(app, latest)].parents if parent_app == app]
    return latest, (parents[0] if parents else "zero")


def ny(day: str, hour: int) -> datetime:
    return datetime.strptime(day, "%Y%m%d").replace(hour=hour, tzinfo=ZoneInfo("America/New_York"))


def play_day(day: str, *, stake_u: int = 1_000_000) -> dict:
    """A trading day through the services: deposits, two bets, lock, settle UP, a withdrawal paid out.

    Returns the bettors and the exact amounts the test then checks.
    """
    from betting.services import bet_place
    from ledger.selectors import user_balance_u
    from rounds.services import round_lock, round_open, round_settle
    from tests.factories import UserFactory, fund
    from withdrawals.services import withdrawal_request, withdrawals_process

    up, down = UserFactory(), UserFactory()
    fund(up, 10 * stake_u)
    fund(down, 10 * stake_u)
    with time_machine.travel(ny(day, 10), tick=False):
        round_open(code=day)
        bet_place(user=up, side="UP", stake_u=stake_u, round_code=day)
        bet_place(user=down, side="DOWN", stake_u=stake_u, round_code=day)
    with time_machine.travel(ny(day, 16), tick=False):
        round_lock(code=day)
    with time_machine.travel(ny(day, 17), tick=False):
        settlement = round_settle(code=day, result="UP", reason="migration test")
    withdrawal, _ = withdrawal_request(user=up, amount_u=stake_u, destination=ADDRESS, source="api")
    withdrawals_process(withdrawal_ids=[withdrawal.pk], source="cli")
    return {
        "up": up.pk,
        "down": down.pk,
        "withdrawal": withdrawal.pk,
        "up_balance_u": user_balance_u(user_id=up.pk),
        "down_balance_u": user_balance_u(user_id=down.pk),
        "fee_u": settlement.fee_u,
    }
