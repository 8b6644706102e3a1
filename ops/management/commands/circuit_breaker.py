from django.core.management.base import BaseCommand

from common.commands import command_errors
from ops.breaker import breaker_trips, circuit_breaker_evaluate
from ops.management.commands.emergency_stop import switch_line
from ops.models import OpsSwitch
from ops.selectors import switch_get
from ops.services import circuit_breaker_reset


class Command(BaseCommand):
    help = "Circuit breaker: `status` (and which rules would trip now), `evaluate`, `reset --reason ...`."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "evaluate", "reset"])
        parser.add_argument("--reason", default="", help="Why the breaker may close (required for reset).")

    def handle(self, *args, action: str, reason: str, **options):
        if action == "reset":
            with command_errors():
                _, changed = circuit_breaker_reset(reason=reason, source="cli")
            self.stdout.write(self.style.SUCCESS("Circuit breaker reset.") if changed else "Breaker was not open.")
        elif action == "evaluate":
            trip = circuit_breaker_evaluate(source="cli")
            self.stdout.write(f"Opened by {trip.rule}: {trip.reason}" if trip else "No new trip.")
        self.stdout.write(switch_line(switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER)))
        if action == "status":
            trips = breaker_trips()
            if not trips:
                self.stdout.write("  every rule passes now")
            for trip in trips:
                self.stdout.write(f"  would trip: {trip.rule}: {trip.reason}")
