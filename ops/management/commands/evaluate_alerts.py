from django.core.management.base import BaseCommand

from ops.alerts import alerts_evaluate
from ops.selectors import alerts_open


class Command(BaseCommand):
    help = "Evaluate every alert rule now (the beat does this every minute) and list open alerts."

    def handle(self, *args, **options):
        notified = alerts_evaluate()
        self.stdout.write(f"Notified {len(notified)} alert(s).")
        for alert in alerts_open():
            self.stdout.write(f"  [{alert.severity}] {alert.key}: {alert.summary}")
