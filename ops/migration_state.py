"""What the running code knows about its schema: which migrations are applied, pending, the targets.

`/health`, `validate_config` and `migration_status` read it. Building the migration graph imports
every migration module and reads `django_migrations`: a few milliseconds, but /health is hit often,
so `migrations_pending` keeps its answer for MIGRATION_STATUS_CACHE_SECONDS per process.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

PENDING_CODE = "migrations_pending"


@dataclass(frozen=True)
class MigrationState:
    applied: list[str]  # "app.name", in graph order
    pending: list[str]  # the code's migrations the database has not applied, in the order migrate runs them
    applied_targets: dict[str, str]  # app -> its latest applied migration ("zero": none), the rollback targets
    code_targets: dict[str, str]  # app -> the latest migration the running code has (a leaf of the graph)


def migration_state(*, using: str = DEFAULT_DB_ALIAS) -> MigrationState:
    executor = MigrationExecutor(connections[using])
    loader = executor.loader
    graph = loader.graph
    leaves = graph.leaf_nodes()
    applied_keys = set(loader.applied_migrations)
    ordered = [key for leaf in leaves for key in graph.forwards_plan(leaf)]
    nodes = list(dict.fromkeys(ordered))  # graph order, each migration once
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in executor.migration_plan(leaves)]
    applied_targets = {app: "zero" for app, _ in leaves}
    for app, name in nodes:  # graph order: the last applied one of each app wins
        if (app, name) in applied_keys:
            applied_targets[app] = name
    return MigrationState(
        applied=[f"{app}.{name}" for app, name in nodes if (app, name) in applied_keys],
        pending=pending,
        applied_targets=dict(sorted(applied_targets.items())),
        code_targets=dict(sorted(leaves)),
    )


_cache: dict[str, tuple[float, list[str]]] = {}


def migrations_pending(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The running code's migrations that the database lacks (cached for a few seconds per process)."""
    now = time.monotonic()
    cached = _cache.get(using)
    if cached and now - cached[0] < settings.MIGRATION_STATUS_CACHE_SECONDS:
        return cached[1]
    pending = migration_state(using=using).pending
    _cache[using] = (now, pending)
    return pending


def migrations_pending_forget() -> None:
    """After a migrate in this process (tests, the migrate command) the next call reads afresh."""
    _cache.clear()
