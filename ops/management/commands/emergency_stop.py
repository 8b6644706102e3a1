from django.core.management.base import BaseCommand

from common.commands import actor_from_options, add_actor_argument, command_errors
from ops.models import OpsSwitch
from ops.reports import switch_changed_by
from ops.selectors import switch_get
from ops.services import ops_emergency_stop


def switch_line(switch: OpsSwitch) -> str:
    state = "ON" if switch.active else "off"
    who = switch_changed_by(switch=switch) or "system"
    when = f"{switch.changed_at:%Y-%m-%d %H:%M:%S %Z}" if switch.changed_at else "never switched"
    reason = f" — {switch.reason}" if switch.reason else ""
    return f"{switch.name}: {state}{reason} ({when}, by {who})"


class Command(BaseCommand):
    help = "Emergency stop: `on --reason ...` refuses bets and withdrawal processing; `off` resumes; `status`."

    def add_arguments(self, parser):
        parser.add_argument("state", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="Why (required for `on`); recorded in the audit log.")
        add_actor_argument(parser)

    def handle(self, *args, state: str, reason: str, **options):
        if state == "status":
            self.stdout.write(switch_line(switch_get(name=OpsSwitch.Name.EMERGENCY_STOP)))
            return
        actor = actor_from_options(options)
        with command_errors():
            switch, changed = ops_emergency_stop(active=state == "on", reason=reason, actor=actor, source="cli")
        if not changed:
            self.stdout.write(f"Emergency stop already {state}; nothing changed.")
        else:
            style = self.style.WARNING if switch.active else self.style.SUCCESS
            state_text = "ON: bets and withdrawal processing are refused" if switch.active else "off"
            self.stdout.write(style(f"Emergency stop is now {state_text}."))
        self.stdout.write(switch_line(switch))
