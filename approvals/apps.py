from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Four eyes: one request / approve model for every manual money decision. A leaf like `audit`:
    it imports only `audit` and `common`; the rooms that need a second person call its services."""

    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"
