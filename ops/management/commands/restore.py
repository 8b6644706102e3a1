from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.commands import actor_from_options, add_actor_argument, command_errors
from ops.backup import backup_restore
from ops.exceptions import LossNotConfirmed


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup`. Runs only in maintenance mode once the database has been quiet "
        "for --quiet-seconds; without --confirm-loss it prints what the restore would erase and the SHA-256 "
        "of that list, and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--confirm-loss",
            default="",
            metavar="SHA256",
            help="the SHA-256 of the loss list printed by a run without it: restore exactly that loss",
        )
        parser.add_argument(
            "--quiet-seconds",
            type=int,
            default=None,
            help="how long nothing may have written to the database (default RESTORE_QUIET_SECONDS)",
        )
        parser.add_argument("--reason", default="", help="why (required to restore); audit log and P0 alert")
        parser.add_argument(
            "--approve",
            default="",
            metavar="REQUEST_ID",
            help="with --actor: approve another's restore request",
        )
        add_actor_argument(parser)

    def handle(
        self, *args, file: str, confirm_loss: str, quiet_seconds: int | None, reason: str, approve: str, **options
    ):
        actor = actor_from_options(options)
        with command_errors():
            try:
                restored = backup_restore(
                    path=Path(file),
                    confirm_loss=confirm_loss,
                    quiet_seconds=quiet_seconds,
                    actor=actor,
                    source="cli",
                    reason=reason,
                    approve=approve,
                )
            except LossNotConfirmed as exc:
                self.stdout.write(exc.loss.text)
                self.stdout.write(f"Loss SHA-256: {exc.loss.sha256}")
                raise
        self.stdout.write(restored.loss.text)
        self.stdout.write(self.style.WARNING(f"Restored {restored.path.name}; the list above is gone."))
        self.stdout.write("Maintenance stays ON: check the data, then `python manage.py maintenance off`.")
        if not restored.ledger_ok:
            raise CommandError("Restored, but the ledger audit FAILED: run `ledger_audit` for the details.")
        self.stdout.write(self.style.SUCCESS("Ledger audit passed after restore."))
