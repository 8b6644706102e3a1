from django.apps import AppConfig
from django.db.models.signals import post_migrate


def switches_ensure(sender, using="default", **kwargs) -> None:
    """The emergency stop and circuit breaker rows exist (off) in every database, also after a test flush."""
    switch_model = sender.get_model("OpsSwitch")  # from the app registry: apps.py imports no models
    for name in switch_model.Name.values:
        switch_model.objects.using(using).get_or_create(name=name)


class OpsConfig(AppConfig):
    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ops import checks  # noqa: F401 - registers the deploy system checks
        from ops.roles import roles_sync_after_migrate

        # After every migrate (all apps' permissions exist by then: ops is last in INSTALLED_APPS).
        post_migrate.connect(roles_sync_after_migrate, sender=self, dispatch_uid="ops_roles_sync")
        post_migrate.connect(switches_ensure, sender=self, dispatch_uid="ops_switches_ensure")
