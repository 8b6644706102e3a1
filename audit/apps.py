from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: a leaf every app may use. It imports no other app of the project."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
