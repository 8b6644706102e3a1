from django.core.management.base import BaseCommand
from django.utils import timezone

from common.commands import actor_from_options, add_actor_argument, command_errors
from ops.management.commands.emergency_stop import switch_line
from ops.models import OpsSwitch
from ops.rules import breaker_trips
from ops.selectors import switch_get
from ops.services import (
    circuit_breaker_evaluate,
    circuit_breaker_reset,
    circuit_breaker_reset_approve,
    circuit_breaker_reset_request,
)


class Command(BaseCommand):
    help = "Circuit breaker: `status` (and which rules would trip now), `evaluate`, `reset --reason ...`."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "evaluate", "reset"])
        parser.add_argument("--reason", default="", help="Why the breaker may close (required for reset).")
        parser.add_argument(
            "--approve", default="", metavar="REQUEST_ID", help="reset: approve another operator's reset request"
        )
        add_actor_argument(parser)

    def handle(self, *args, action: str, reason: str, approve: str, **options):
        actor = actor_from_options(options)
        if action == "reset" and approve:
            with command_errors():
                _, changed = circuit_breaker_reset_approve(request_id=approve, actor=actor, source="cli")
            self.stdout.write(self.style.SUCCESS("Circuit breaker reset.") if changed else "Approved; not reset yet.")
        elif action == "reset" and actor is not None:
            # A named operator asks; another approves (four eyes). The shell without --actor resets at once.
            with command_errors():
                request, _ = circuit_breaker_reset_request(reason=reason, actor=actor, source="cli")
            self.stdout.write(
                self.style.WARNING(
                    f"Reset requested (request {request.pk}): another operator runs "
                    f"`circuit_breaker reset --approve {request.pk} --actor EMAIL`."
                )
            )
        elif action == "reset":
            with command_errors():
                _, changed = circuit_breaker_reset(reason=reason, actor=actor, source="cli")
            self.stdout.write(self.style.SUCCESS("Circuit breaker reset.") if changed else "Breaker was not open.")
        elif action == "evaluate":
            with command_errors():
                trip = circuit_breaker_evaluate(source="cli", actor=actor)
            self.stdout.write(f"Opened by {trip.rule}: {trip.reason}" if trip else "No new trip.")
        self.stdout.write(switch_line(switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER)))
        if action == "status":
            trips = breaker_trips(now=timezone.now())
            if not trips:
                self.stdout.write("  every rule passes now")
            for trip in trips:
                self.stdout.write(f"  would trip: {trip.rule}: {trip.reason}")
