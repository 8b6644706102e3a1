from django.core.management.base import BaseCommand

from common.commands import command_errors
from ops.alerts import alert_send_test


class Command(BaseCommand):
    help = "Send a test alert through every configured route (email, webhook) and print what each did."

    def add_arguments(self, parser):
        parser.add_argument("--severity", default="P1", choices=["P0", "P1", "P2", "P3"])

    def handle(self, *args, severity: str, **options):
        with command_errors():
            results = alert_send_test(severity=severity)
        for line in results:
            self.stdout.write(f"  {line}")
        self.stdout.write(self.style.SUCCESS(f"Test alert {severity} dispatched."))
