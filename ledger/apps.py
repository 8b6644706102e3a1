from django.apps import AppConfig
from django.db.models.signals import post_migrate


def system_accounts_ensure(sender, using="default", **kwargs) -> None:
    """house, withdrawals:pending and the two world accounts exist in every database."""
    from ledger.models import Account

    for code, kind in (
        (Account.HOUSE, Account.Kind.HOUSE),
        (Account.WITHDRAWALS_PENDING, Account.Kind.PENDING),
        (Account.EXTERNAL_DEPOSITS, Account.Kind.EXTERNAL),
        (Account.EXTERNAL_WITHDRAWALS, Account.Kind.EXTERNAL),
    ):
        Account.objects.using(using).get_or_create(code=code, defaults={"kind": kind})


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(system_accounts_ensure, sender=self, dispatch_uid="ledger_system_accounts")
