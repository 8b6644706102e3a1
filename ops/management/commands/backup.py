from pathlib import Path

from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.progress import step
from ops.backup import backup_create


class Command(BaseCommand):
    help = "Back up the database to BACKUP_DIR (pg_dump -Fc / SQLite online backup) with a .sha256 checksum."

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=None, help="target directory (default: BACKUP_DIR)")
        parser.add_argument("--reason", default="", help="recorded in the audit log")
        add_actor_argument(parser)

    def handle(self, *args, dir: str | None, reason: str, **options):
        actor = actor_from_options(options)
        with command_errors(), step("Backing up the database", stream=self.stderr):
            backup = backup_create(directory=Path(dir) if dir else None, actor=actor, source="cli", reason=reason)
        self.stdout.write(f"{backup.path}")
        self.stdout.write(f"sha256 {backup.sha256}  ({backup.size:,} bytes)")
        self.stdout.write(self.style.SUCCESS("Backup written."))
