from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from common.commands import actor_from_options, add_actor_argument, command_errors
from ops.backup import database_last_write
from ops.management.commands.emergency_stop import switch_line
from ops.models import OpsSwitch
from ops.selectors import switch_get
from ops.services import ops_maintenance


class Command(BaseCommand):
    help = (
        "Maintenance mode: `on --reason ...` makes every web process answer the API with 503 and every beat "
        "task skip (needed before `restore`); `off` resumes; `status` shows it and the last database write."
    )

    def add_arguments(self, parser):
        parser.add_argument("state", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="Why (required for `on`); recorded in the audit log.")
        add_actor_argument(parser)

    def handle(self, *args, state: str, reason: str, **options):
        if state != "status":
            actor = actor_from_options(options)
            with command_errors():
                switch, changed = ops_maintenance(active=state == "on", reason=reason, actor=actor, source="cli")
            if not changed:
                self.stdout.write(f"Maintenance already {state}; nothing changed.")
            elif switch.active:
                self.stdout.write(self.style.WARNING("Maintenance is now ON: the API answers 503, beat tasks skip."))
            else:
                self.stdout.write(self.style.SUCCESS("Maintenance is now off: the API and the beat resume."))
        self.stdout.write(switch_line(switch_get(name=OpsSwitch.Name.MAINTENANCE)))
        last = database_last_write()
        if last is None:
            self.stdout.write("Last database write: none recorded.")
            return
        age = max(0.0, (timezone.now() - last.at).total_seconds())
        self.stdout.write(
            f"Last database write: {age:.0f} s ago ({last.where}); `restore` needs "
            f"{settings.RESTORE_QUIET_SECONDS} s of quiet in maintenance."
        )
