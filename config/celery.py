import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Every task skips its run while maintenance mode is on (ops/maintenance.py), in one place.
app = Celery("updown", task_cls="ops.maintenance:MaintenanceAwareTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
