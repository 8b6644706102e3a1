from django.core.management.base import BaseCommand, CommandError

from common.commands import command_errors
from ops.backup import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup`: verifies its checksum and origin first, refuses while web/beat "
        "run (unless --force), runs the ledger audit after."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--force", action="store_true", help="restore even though web/beat look alive")
        parser.add_argument("--reason", default="", help="recorded in the audit log")

    def handle(self, *args, file: str, force: bool, reason: str, **options):
        with command_errors():
            restored = backup_restore(path=file, force=force, source="cli", reason=reason)
        self.stdout.write(f"Restored {restored.path.name}.")
        if not restored.ledger_ok:
            raise CommandError("Restored, but the ledger audit FAILED: run `ledger_audit` for the details.")
        self.stdout.write(self.style.SUCCESS("Ledger audit passed after restore."))
