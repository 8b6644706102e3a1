from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ops import checks  # noqa: F401 - registers the deploy system checks
        from ops.roles import roles_sync_after_migrate

        # After every migrate (all apps' permissions exist by then: ops is last in INSTALLED_APPS).
        post_migrate.connect(roles_sync_after_migrate, sender=self, dispatch_uid="ops_roles_sync")
