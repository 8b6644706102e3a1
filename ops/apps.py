from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    # The switch rows (emergency stop, breaker, maintenance) are data: migration 0006 makes them.
    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ops import checks  # noqa: F401 - registers the deploy system checks
        from ops.roles import roles_sync_after_migrate

        # The staff roles stay a post_migrate step: they are groups of permissions, and Django makes the
        # permissions of new models in its own post_migrate (create_permissions), after the migrations
        # have run, so a data migration would not see them on a fresh database. ops is last in
        # INSTALLED_APPS, so every app's permissions exist when this runs.
        post_migrate.connect(roles_sync_after_migrate, sender=self, dispatch_uid="ops_roles_sync")
