from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.schedule import SCHEDULE

MANAGED = "managed by sync_schedule (config/schedule.py)"


class Command(BaseCommand):
    help = "Write the beat schedule declared in config/schedule.py to django-celery-beat (run at deploy)."

    def handle(self, *args, **options):
        with transaction.atomic():
            for name, (task, every_seconds) in SCHEDULE.items():
                interval, _ = IntervalSchedule.objects.get_or_create(
                    every=every_seconds, period=IntervalSchedule.SECONDS
                )
                PeriodicTask.objects.update_or_create(
                    name=name,
                    defaults={"task": task, "interval": interval, "enabled": True, "description": MANAGED},
                )
                self.stdout.write(f"  {name}: {task} every {every_seconds}s")
            stale = PeriodicTask.objects.filter(description=MANAGED).exclude(name__in=list(SCHEDULE))
            for task in stale:
                self.stdout.write(f"  removed {task.name}")
            stale.delete()
        self.stdout.write(self.style.SUCCESS(f"Beat schedule synced: {len(SCHEDULE)} task(s)."))
