"""The deploy side of migrations: the running code names what is pending, a migration waits for
its locks at most MIGRATION_LOCK_TIMEOUT on PostgreSQL, and a refused backward step is a sentence."""

import io
import time

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings

from ops.migration_state import migration_state
from tests.factories import UserFactory, fund
from tests.migrations.helpers import ADDRESS, migrate
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.money]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_health_validate_config_and_migration_status_name_the_pending_migration():
    try:
        migrate("ops", "0006_switch_rows")  # the code is one migration ahead of its database

        response = Client().get("/health")
        body = response.json()
        assert response.status_code == 503
        assert body["checks"]["migrations"] is False
        assert (body["code"], body["migrations_pending"]) == ("migrations_pending", ["ops.0007_switch_plural"])

        with pytest.raises(CommandError):
            call_command("validate_config", stdout=(out := io.StringIO()))
        assert "migrations_pending: the database lacks 1 migration(s) this code needs: ops.0007_switch_plural." in (
            out.getvalue()
        )

        summary = run("migration_status").strip()
        assert "\n" not in summary
        assert ", 1 pending (ops.0007_switch_plural); code targets: " in summary and "ops 0007_switch_plural" in summary
        assert "ops 0006_switch_rows\n" in run("migration_status", "--targets")
    finally:
        migrate()
    assert Client().get("/health").json()["checks"]["migrations"] is True
    assert "migrations_pending" not in Client().get("/health").json()
    assert ", 0 pending; " in run("migration_status")


def test_a_backward_step_the_money_refuses_is_a_sentence_and_leaves_that_step_applied():
    # given: a withdrawal in flight under a UUID payout reference (the previous release would look it up by id)
    user = UserFactory()
    fund(user, 5_000_000)
    withdrawal, _ = withdrawal_request(user=user, amount_u=2_000_000, destination=ADDRESS, source="api")
    Withdrawal.objects.filter(pk=withdrawal.pk).update(status=Withdrawal.Status.PROCESSING)
    try:
        # when: the operator rolls withdrawals back past 0005
        with pytest.raises(CommandError) as refused:
            call_command("migrate", "withdrawals", "0004_payout_addresses", verbosity=0)
        # then: one sentence, and 0005 (with its payout_reference column) is still there
        assert str(refused.value) == (
            "Migration refused and rolled back, the database is as it was before that step: withdrawals "
            f"[{withdrawal.pk}] are PROCESSING under a UUID payout reference; the previous release would look them "
            "up by id and could pay them twice. Resolve them (process_withdrawals) before rolling back."
        )
        assert migration_state().applied_targets["withdrawals"] == "0005_payout_reference"
        assert Withdrawal.objects.get(pk=withdrawal.pk).payout_reference == withdrawal.payout_reference
    finally:
        migrate()


def lock_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_a_migration_behind_a_long_transaction_gives_up_after_the_lock_timeout_with_a_sentence(settings):
    assert settings.MIGRATION_LOCK_TIMEOUT == 5.0  # the default; the test waits 1 s
    # given: another session is in the middle of a write to withdrawals (ROW EXCLUSIVE, as an open INSERT holds)
    other = psycopg.connect(**connection.get_connection_params())
    other.execute("BEGIN")
    other.execute("LOCK TABLE withdrawals IN ROW EXCLUSIVE MODE")
    started = time.monotonic()
    try:
        # when: a migration needs a stronger lock on that table (dropping its TRUNCATE trigger)
        with override_settings(MIGRATION_LOCK_TIMEOUT=1), pytest.raises(CommandError) as refused:
            call_command("migrate", "withdrawals", "0005_payout_reference", verbosity=0)
        waited = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
    # then: it gave up after about the timeout, said why, and changed nothing
    assert 1 <= waited < 4, waited
    assert str(refused.value).startswith("A migration waited more than 1 s for a table lock that another transaction")
    assert migration_state().applied_targets["withdrawals"] == "0006_truncate_guard"
    # and the timeout was the migration's only: this connection (the one bets use) has the server's default again
    assert lock_timeout() == "0"
    call_command("migrate", "withdrawals", "0005_payout_reference", verbosity=0)  # unblocked, it goes through
    assert lock_timeout() == "0"
    migrate()
