"""The README's "Deploy and roll back", played: data made on the previous release's schema,
the recorded targets, migrate forward, a day of money, roll back to the targets, data intact, ledger_audit
passes, forward again.

The previous release is commit 1faca0c: betting 0003, ledger 0002, marketdata 0001, ops 0002, rounds 0003,
withdrawals 0003, no audit app. Its ledger and users tables are what this release has, so the data made
there is made by today's services (user_create, ledger_post); every check after the rollback is plain SQL,
as the previous code would read it.
"""

import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.models import Account
from ledger.selectors import user_balance_u
from ledger.services import Line, ledger_post
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory
from tests.migrations.helpers import PROJECT_APPS, migrate, play_day

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.money]

PREVIOUS_RELEASE = {
    "audit": "zero",
    "betting": "0003_alter_bet_round_alter_bet_user",
    "ledger": "0002_rules_in_database",
    "marketdata": "0001_initial",
    "ops": "0002_alert_heartbeat_eventcount_opsswitch",
    "risk": "zero",
    "rounds": "0003_bets_fillfactor",
    "withdrawals": "0003_withdrawal_idempotency_key",
}


def targets_recorded() -> list[tuple[str, str]]:
    out = io.StringIO()
    call_command("migration_status", "--targets", stdout=out)
    return [tuple(line.split(" ")) for line in out.getvalue().splitlines()]


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_deploy_a_day_and_roll_back_to_the_recorded_targets_keeps_every_row():
    try:
        # the database as the previous release left it, with its money in it
        for app, target in PREVIOUS_RELEASE.items():
            migrate(app, target)
        before = UserFactory()
        ledger_post(
            [Line(Account.user_cash_code(before.pk), 7_000_000), Line(Account.EXTERNAL_DEPOSITS, -7_000_000)],
            ref_type="deposit",
            ref_id="before-deploy",
            idempotency_key=f"deposit:{uuid.uuid4()}",
        )

        # deploy: record the targets, migrate
        targets = targets_recorded()
        assert {app: name for app, name in targets if app in PROJECT_APPS} == PREVIOUS_RELEASE
        migrate()
        assert user_balance_u(user_id=before.pk) == 7_000_000

        # a day on the new release: deposits, bets, lock, settle, a withdrawal paid out
        day = play_day("20250908", stake_u=1_000_000)
        assert (day["up_balance_u"], day["down_balance_u"], day["fee_u"]) == (9_990_000, 9_000_000, 10_000)
        entries = rows("SELECT id, account, amount_u, batch FROM ledger_entries ORDER BY id")
        users = rows("SELECT id, email FROM users ORDER BY id")
        bets = rows("SELECT id, side, stake_u, status, payout_u FROM bets ORDER BY id")
        withdrawals = rows("SELECT id, amount_u, status FROM withdrawals ORDER BY id")
        assert len(bets) == 2 and len(withdrawals) == 1 and withdrawals[0][2] == "COMPLETED"

        # rollback: emergency stop, migrate each app back to its recorded target (the README's loop), ledger_audit
        call_command("emergency_stop", "on", "--reason", "rolling back the release", stdout=io.StringIO())
        for app, target in targets:
            call_command("migrate", app, target, verbosity=0)
        assert {app: name for app, name in targets_recorded() if app in PROJECT_APPS} == PREVIOUS_RELEASE
        assert rows("SELECT id, account, amount_u, batch FROM ledger_entries ORDER BY id") == entries
        assert rows("SELECT id, email FROM users ORDER BY id") == users
        assert rows("SELECT id, side, stake_u, status, payout_u FROM bets ORDER BY id") == bets
        assert rows("SELECT id, amount_u, status FROM withdrawals ORDER BY id") == withdrawals
        assert rows("SELECT name, active FROM ops_switches ORDER BY name") == [
            ("circuit_breaker", False),
            ("emergency_stop", True),  # the stop stays on through the rollback: the rows are not "unmade"
            ("maintenance", False),
        ]
        call_command("ledger_audit", stdout=io.StringIO())  # raises CommandError on any broken invariant
        assert_ledger_invariants()

        # and forward again: the same rows, and the money adds up
        migrate()
        assert rows("SELECT id, account, amount_u, batch FROM ledger_entries ORDER BY id") == entries
        assert user_balance_u(user_id=day["up"]) == 9_990_000
        assert user_balance_u(user_id=before.pk) == 7_000_000
        assert_ledger_invariants()
        call_command("emergency_stop", "off", stdout=io.StringIO())
    finally:
        migrate()
