"""One line: how many migrations are applied, which are pending, and where each app's code stands.

`--targets` prints `app migration` per app, the latest applied one ("zero": none): run it before a
deploy's migrate and keep the output; rolling back is `migrate app migration` for each line.
"""

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from ops.migration_state import migration_state


class Command(BaseCommand):
    help = "Summarise the migrations: applied, pending (by name), and the latest migration of each app in this code."

    def add_arguments(self, parser):
        parser.add_argument(
            "--targets",
            action="store_true",
            help="print `app migration` per app, the latest applied (the rollback targets; keep them at deploy)",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, targets: bool, database: str, **options):
        state = migration_state(using=database)
        if targets:
            for app, name in state.applied_targets.items():
                self.stdout.write(f"{app} {name}")
            return
        pending = f"{len(state.pending)} pending ({', '.join(state.pending)})" if state.pending else "0 pending"
        code = ", ".join(f"{app} {name}" for app, name in state.code_targets.items())
        self.stdout.write(f"migrations: {len(state.applied)} applied, {pending}; code targets: {code}")
