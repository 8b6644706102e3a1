from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.commands import command_errors
from ops.alerts import alert_send_test


def _reached(line: str) -> bool:
    """A route's answer that means someone got the alert ("email: sent to …", "webhook: HTTP 200")."""
    return line.startswith("email: sent to") or line.startswith("webhook: HTTP")


class Command(BaseCommand):
    help = (
        "Send a test alert through every configured route (email, webhook) and print what each did; "
        "exit 1 when no route is configured or none took it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--severity", default="P1", choices=["P0", "P1", "P2", "P3"])

    def handle(self, *args, severity: str, **options):
        if not settings.ALERT_EMAIL_TO and not settings.ALERT_WEBHOOK_URL:
            raise CommandError(
                "No alert route is configured: set ALERT_EMAIL_TO and/or ALERT_WEBHOOK_URL (see .env.example); "
                "nothing was sent. [no_alert_route]"
            )
        with command_errors():
            results = alert_send_test(severity=severity)
        for line in results:
            self.stdout.write(f"  {line}")
        reached = [line for line in results if _reached(line)]
        if not reached:
            raise CommandError(
                f"The test alert {severity} reached no route; see the lines above. [alert_not_delivered]"
            )
        self.stdout.write(self.style.SUCCESS(f"Test alert {severity} delivered by {len(reached)} route(s)."))
