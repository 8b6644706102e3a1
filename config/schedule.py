"""Every beat schedule, declared once. `manage.py sync_schedule` writes it to django-celery-beat.

Each entry: name -> (task path, every N seconds). Apps add their tasks here.
"""

SCHEDULE: dict[str, tuple[str, int]] = {}
