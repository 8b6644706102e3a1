"""Every migration runs both ways: each app to zero and forward, each app's latest back one
and forward, with rows in the tables; afterwards the schema equals the fresh one, by introspection.

On SQLite in the first pass of `make test`, on PostgreSQL (triggers, functions, fillfactor) in the second.
"""

import pytest
from django.core.management import call_command

from ledger.models import Account
from ops.models import OpsSwitch
from tests.conftest import assert_ledger_invariants
from tests.migrations.helpers import PROJECT_APPS, TRADING_DAYS, latest_and_previous, migrate, play_day, schema_diff, schema_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.money]

SYSTEM_ACCOUNTS = {"house", "withdrawals:pending", "external:deposits", "external:withdrawals"}


def test_every_app_to_zero_and_back_and_every_latest_back_one_step_leaves_the_fresh_schema(capsys):
    fresh = schema_snapshot()  # the test database was migrated from nothing: a fresh schema
    assert ("ledger_entries" in {row[0] for row in fresh["__triggers__"]}), "the comparison sees the ledger's triggers"
    walked = 0
    days = iter(TRADING_DAYS)
    try:
        for app in PROJECT_APPS:
            play_day(next(days))  # rows in the tables the walk takes down
            walked += migrate(app, "zero")
            walked += migrate()
            assert set(Account.objects.filter(code__in=SYSTEM_ACCOUNTS).values_list("code", flat=True)) == (
                SYSTEM_ACCOUNTS
            ), f"after {app} zero and forward"
            assert OpsSwitch.objects.count() == 3, f"after {app} zero and forward"
            # Dropping one app's tables leaves the others' rows pointing at ids that will be handed out
            # again (a bet's ledger batch outlives the bets table): start the next app from empty tables.
            call_command("flush", verbosity=0, interactive=False)
        for app in PROJECT_APPS:
            play_day(next(days))
            latest, previous = latest_and_previous(app)
            walked += migrate(app, previous)
            walked += migrate(app, latest)
            assert_ledger_invariants()
    finally:
        migrate()  # whatever failed, the next test gets a migrated database
    assert schema_diff(fresh, schema_snapshot()) == []
    with capsys.disabled():
        print(f"\n[migration round trip] walked {walked} migrations")


def test_the_roles_handler_skips_quietly_when_the_auth_tables_are_gone(monkeypatch):
    from django.contrib.auth.models import Group
    from django.db import connection

    from ops.roles import roles_sync_after_migrate

    # given: a backward migrate has taken the auth tables away (`migrate auth zero`)
    Group.objects.all().delete()
    monkeypatch.setattr(connection.introspection, "table_names", lambda *args, **kwargs: ["django_migrations"])
    # when: post_migrate runs the handler; then: nothing, and no traceback
    roles_sync_after_migrate(sender=None, using="default")
    monkeypatch.undo()
    assert not Group.objects.exists()
    roles_sync_after_migrate(sender=None, using="default")  # tables back: the three roles again
    assert set(Group.objects.values_list("name", flat=True)) == {"operator", "finance", "auditor"}
