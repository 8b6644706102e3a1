"""Staff roles as Django groups: operator, finance, auditor (read-only). Synced idempotently.

Permissions are looked up by codename at sync time and missing ones are skipped, so a
role picks up another app's permission as soon as that app defines it.
"""

from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

APPS = ["approvals", "audit", "betting", "ledger", "rounds", "withdrawals", "marketdata", "risk", "ops"]

# (app_label, codename) pairs; "*custom" = every permission of the app that is not add/change/delete/view.
# Acting on behalf of a user is one named permission per act, held by one role: the operator places
# bets for a user, finance requests withdrawals for a user. Withdrawal permissions are listed one by
# one (no "*custom") so a new on-behalf power never reaches a role by accident. The operator keeps
# approve / process / fail: running the payout queue is operations, and an operator's approval is
# the second person a finance request to an unregistered address waits for.
ROLES: dict[str, list[tuple[str, str]]] = {
    "operator": [
        ("rounds", "lock_round"),
        ("rounds", "settle_round"),
        ("rounds", "void_round"),
        ("ops", "change_opsswitch"),
        ("marketdata", "change_pricesource"),  # enable / disable / test a price source
        ("betting", "place_bet_on_behalf"),
        ("risk", "change_limits"),
        ("risk", "add_selfexclusion"),
        ("withdrawals", "approve_withdrawal"),
        ("withdrawals", "process_withdrawal"),
        ("withdrawals", "fail_withdrawal"),
    ],
    "finance": [
        ("ledger", "manual_adjust"),
        ("withdrawals", "approve_withdrawal"),
        ("withdrawals", "process_withdrawal"),
        ("withdrawals", "fail_withdrawal"),
        ("withdrawals", "request_withdrawal_on_behalf"),
    ],
    "auditor": [],  # reads everything, writes nothing, acts for nobody
}


def _view_permissions() -> Q:
    return Q(content_type__app_label__in=APPS, codename__startswith="view_")


def role_permissions(role: str) -> list[Permission]:
    query = _view_permissions()  # every role can see everything; only the auditor sees nothing more
    for app_label, codename in ROLES[role]:
        if codename == "*custom":
            query |= Q(content_type__app_label=app_label) & ~Q(codename__regex=r"^(add|change|delete|view)_")
        else:
            query |= Q(content_type__app_label=app_label, codename=codename)
    return list(Permission.objects.filter(query).order_by("content_type__app_label", "codename"))


def roles_sync() -> dict[str, int]:
    """Create or update the three groups; returns {role: number of permissions}."""
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        permissions = role_permissions(role)
        group.permissions.set(permissions)
        counts[role] = len(permissions)
    return counts


ROLE_TABLES = {"auth_group", "auth_permission", "auth_group_permissions", "django_content_type"}


def roles_sync_after_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """After a migrate, forward or backward: sync the roles if their tables exist.

    `migrate auth zero` (or contenttypes) removes the tables the roles live in; then there is nothing
    to sync, and a rollback must not end in a traceback. The next forward migrate syncs them again.
    """
    if using != DEFAULT_DB_ALIAS or not set(connections[using].introspection.table_names()) >= ROLE_TABLES:
        return
    roles_sync()
