"""Issue 9, finding 3: `restore` ran while the house was serving and silently erased paid money.

It only looked for a local gunicorn pidfile and a fresh beat heartbeat, so it missed a web
server on another host: the restore dropped a provider deposit and a COMPLETED 7 USDC
withdrawal (the bettor got the 7 USDC back in cash: paid twice). Now `restore` refuses unless
maintenance mode (a database flag every web process, worker and beat honours) is on and the
database has been quiet; it lists what it will erase, with amounts, and acts only on a
confirmation of that exact list (its SHA-256); the restore is audited and raises a P0 alert.

The `money` mark runs this file on SQLite and again on PostgreSQL (pg_dump/pg_restore).
"""

import hashlib
import io
import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from ledger.models import LedgerBatch
from ledger.selectors import user_balance_u
from ops.backup import database_last_write
from ops.models import Alert, Heartbeat, OpsSwitch
from ops.selectors import Maintenance, maintenance_get
from ops.services import heartbeat_beat, ops_maintenance
from rounds.models import Round
from tests.betting.conftest import round_create
from tests.conftest import api_client_for, assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.proof.conftest import staff_user
from withdrawals.models import Deposit, Withdrawal
from withdrawals.services import withdrawal_request, withdrawals_process

pytestmark = [pytest.mark.money, pytest.mark.django_db(transaction=True)]

ADDRESS = "0x" + "7a" * 20
QUIET = 1  # --quiet-seconds in these tests: the real default is RESTORE_QUIET_SECONDS = 30


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args, code: str) -> str:
    """Run the command, expect the CommandError with `[code]`, return what it printed before refusing."""
    out = io.StringIO()
    with pytest.raises(CommandError, match=rf"\[{code}\]"):
        call_command(*args, stdout=out)
    return out.getvalue()


def quiet() -> None:
    time.sleep(QUIET + 0.05)


def loss_sha(output: str) -> str:
    return re.search(r"Loss SHA-256: ([0-9a-f]{64})", output).group(1)


@pytest.fixture
def served(tmp_path):
    """The issue's night: a backup, then the house keeps serving and money moves after it.

    Returns (backup path, bettor, the 3 USDC deposit, the COMPLETED 7 USDC withdrawal).
    """
    bettor = UserFactory(email="night@example.com")
    fund(bettor, 100_000_000)
    run("backup", "--dir", str(tmp_path))
    backup = next(p for p in tmp_path.iterdir() if p.suffix in (".dump", ".sqlite3"))
    # after the backup: a provider deposit of 3 USDC, and a 7 USDC withdrawal paid out on chain
    fund(bettor, 3_000_000, tx_id="provider:0xdeadbeef")
    deposit = Deposit.objects.get(tx_id="provider:0xdeadbeef")
    withdrawal, _ = withdrawal_request(user=bettor, amount_u=7_000_000, destination=ADDRESS, source="api")
    withdrawals_process(withdrawal_ids=[withdrawal.pk], source="cli")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.COMPLETED
    assert user_balance_u(user_id=bettor.pk) == 96_000_000  # 100 + 3 - 7
    return backup, bettor, deposit, withdrawal


def assert_unchanged(bettor, deposit, withdrawal) -> None:
    assert user_balance_u(user_id=bettor.pk) == 96_000_000
    assert Deposit.objects.filter(pk=deposit.pk, amount_u=3_000_000).exists()
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.COMPLETED
    assert not AuditEvent.objects.filter(action="ops.restore").exists()


def test_restore_refuses_outside_maintenance_and_changes_nothing(served):
    backup, bettor, deposit, withdrawal = served
    # the old check passed here: no local gunicorn pidfile, no fresh heartbeat
    assert not Heartbeat.objects.exists()
    refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="maintenance_off")
    quiet()
    refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="maintenance_off")
    assert_unchanged(bettor, deposit, withdrawal)


def test_restore_in_maintenance_refuses_while_the_database_was_written_recently(served):
    backup, bettor, deposit, withdrawal = served
    run("maintenance", "on", "--reason", "restore drill")
    # turning maintenance on is itself a write: the quiet clock starts there (default 30 s)
    refused("restore", str(backup), code="database_not_quiet")
    quiet()
    # then something still writes (here an operator deposit: commands are not blocked)
    fund(bettor, 1_000_000, tx_id="provider:late")
    output = refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="database_not_quiet")
    assert output == ""  # refused before listing anything
    assert user_balance_u(user_id=bettor.pk) == 97_000_000
    assert not AuditEvent.objects.filter(action="ops.restore").exists()


def test_quiet_in_maintenance_restore_lists_the_loss_with_amounts_and_changes_nothing(served):
    backup, bettor, deposit, withdrawal = served
    run("maintenance", "on", "--reason", "restore drill")
    quiet()

    output = refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="loss_not_confirmed")

    lines = output.splitlines()
    assert lines[0].startswith(f"Restoring {backup.name} (sha256 ")
    assert (
        f"  deposit #{deposit.pk} 3.00 USDC (3,000,000 u) to night@example.com, tx provider:0xdeadbeef, credited "
        in output
    )
    assert (
        f"  withdrawal #{withdrawal.pk} 7.00 USDC (7,000,000 u) of night@example.com COMPLETED (not in the backup): "
        "already PAID OUT, and the bettor's cash gets the amount back: paid twice unless recovered"
    ) in lines
    assert "  ledger batches: 3 (deposit 1, withdrawal 2)" in lines  # credit; request + completion
    assert (
        "Total: 1 deposit(s) 3.00 USDC (3,000,000 u); 1 withdrawal(s) 7.00 USDC (7,000,000 u), "
        "1 already paid out 7.00 USDC (7,000,000 u); 0 settlement(s) paying 0.00 USDC (0 u); "
        "0 bet(s) 0.00 USDC (0 u); 3 ledger batch(es)."
    ) in lines
    sha = loss_sha(output)
    listed = output[: output.index("Loss SHA-256:")]
    assert hashlib.sha256(listed.rstrip("\n").encode() + b"\n").hexdigest() == sha  # the SHA of what was shown
    assert_unchanged(bettor, deposit, withdrawal)


def test_the_loss_names_a_payout_that_would_be_paid_again_and_an_undone_settlement(tmp_path):
    # given, in the backup: a QUEUED 5 USDC withdrawal and a round with a 2 USDC bet on it
    from betting.services import bet_place
    from rounds.services import round_lock, round_settle

    bettor = UserFactory(email="queued@example.com")
    fund(bettor, 20_000_000)
    queued, _ = withdrawal_request(user=bettor, amount_u=5_000_000, destination=ADDRESS, source="api")
    round_create(code="20250908")
    bet_place(user=bettor, side="UP", stake_u=2_000_000, round_code="20250908")
    run("backup", "--dir", str(tmp_path))
    backup = next(p for p in tmp_path.iterdir() if p.suffix in (".dump", ".sqlite3"))
    # after it: the withdrawal is paid, the round locked and voided (the 2 USDC stake refunded)
    withdrawals_process(withdrawal_ids=[queued.pk], source="cli")
    round_lock(code="20250908", source="cli")
    round_settle(code="20250908", result="VOID", reason="no close", source="cli")
    run("maintenance", "on", "--reason", "restore drill")
    quiet()

    lines = refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="loss_not_confirmed").splitlines()

    assert (
        f"  withdrawal #{queued.pk} 5.00 USDC (5,000,000 u) of queued@example.com COMPLETED (QUEUED in the "
        "backup): already PAID OUT, and it goes back to QUEUED: it would be paid again"
    ) in lines
    assert "  round 20250908 SETTLED: goes back to OPEN" in lines
    assert (
        "  settlement of round 20250908 VOID: paid out 2.00 USDC (2,000,000 u) to 0 of 1 bet(s), "
        "fee 0.00 USDC (0 u): the payouts are undone"
    ) in lines
    assert next(line for line in lines if line.startswith("Total:")).startswith(
        "Total: 0 deposit(s) 0.00 USDC (0 u); 1 withdrawal(s) 5.00 USDC (5,000,000 u), "
        "1 already paid out 5.00 USDC (5,000,000 u); 1 settlement(s) paying 2.00 USDC (2,000,000 u); 0 bet(s)"
    )
    assert Withdrawal.objects.get(pk=queued.pk).status == Withdrawal.Status.COMPLETED


def test_a_wrong_or_stale_confirmation_is_refused(served):
    backup, bettor, deposit, withdrawal = served
    run("maintenance", "on", "--reason", "restore drill")
    quiet()
    sha = loss_sha(refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="loss_not_confirmed"))
    args = ["restore", str(backup), "--quiet-seconds", str(QUIET), "--reason", "drill"]

    # a mistyped SHA
    typo = ("0" if sha[0] != "0" else "1") + sha[1:]
    output = refused(*args, "--confirm-loss", typo, code="loss_not_confirmed")
    assert loss_sha(output) == sha
    # the loss grew after it was read (the operator credited a late deposit): the old SHA is stale
    fund(bettor, 2_000_000, tx_id="provider:after-listing")
    quiet()
    output = refused(*args, "--confirm-loss", sha, code="loss_not_confirmed")
    assert "2.00 USDC (2,000,000 u) to night@example.com, tx provider:after-listing" in output
    assert loss_sha(output) != sha
    assert user_balance_u(user_id=bettor.pk) == 98_000_000
    assert not AuditEvent.objects.filter(action="ops.restore").exists()


def test_the_confirmed_restore_restores_audits_alerts_p0_and_stays_in_maintenance(served):
    backup, bettor, deposit, withdrawal = served
    run("maintenance", "on", "--reason", "restore drill")
    quiet()
    sha = loss_sha(refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="loss_not_confirmed"))
    refused("restore", str(backup), "--quiet-seconds", str(QUIET), "--confirm-loss", sha, code="reason_required")

    output = run(
        "restore", str(backup), "--quiet-seconds", str(QUIET), "--confirm-loss", sha, "--reason", "corrupt ledger"
    )

    assert "Ledger audit passed after restore." in output
    # the database is the backup's: 100 USDC, no deposit, no withdrawal
    assert user_balance_u(user_id=bettor.pk) == 100_000_000
    assert not Deposit.objects.filter(pk=deposit.pk).exists()
    assert not Withdrawal.objects.filter(pk=withdrawal.pk).exists()
    assert_ledger_invariants()
    # audited in the restored database, with the confirmed loss
    event = AuditEvent.objects.get(action="ops.restore")
    assert (event.object_id, event.reason, event.source) == (backup.name, "corrupt ledger", "cli")
    assert event.before == {
        "loss_sha256": sha,
        "loss": {
            "deposits": 1,
            "deposits_u": 3_000_000,
            "withdrawals": 1,
            "withdrawals_u": 7_000_000,
            "withdrawals_paid_out": 1,
            "withdrawals_paid_out_u": 7_000_000,
            "settlements": 0,
            "settlements_paid_out_u": 0,
            "rounds": 0,
            "bets": 0,
            "bets_stake_u": 0,
            "ledger_batches": 3,
        },
    }
    assert event.after == {
        "ledger_audit_ok": True,
        "backup_sha256": event.after["backup_sha256"],
        "maintenance": "kept on",
    }
    # a P0 alert naming the file and the money erased
    alert = Alert.objects.get(rule="restore")
    assert alert.severity == "P0" and alert.notify_count == 1
    assert backup.name in alert.summary and "1 withdrawal(s) of 7.00 USDC (7,000,000 u)" in alert.summary
    # the backup said maintenance off; the restored house is paused from the restore's own commit
    # (no window in which the beat could pay the backup's QUEUED withdrawals) until the operator resumes it
    assert maintenance_get() == Maintenance(
        reason=f"restored from {backup.name}: check it, then `maintenance off`",
        since=OpsSwitch.objects.get(name=OpsSwitch.Name.MAINTENANCE).changed_at,
    )


def test_maintenance_api_answers_503_and_keeps_health_and_admin_reachable(client, new_key):
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    round_create()
    staff = staff_user(email="operator@example.com", perms=["ops.change_opsswitch"], group="operator")
    bettor_api, staff_api = api_client_for(bettor), api_client_for(staff)
    ops_maintenance(active=True, reason="restore drill", source="cli")
    batches = LedgerBatch.objects.count()

    hostile = [
        ("post", "/api/v1/bets", {"side": "UP", "stake_u": 1_000_000}),
        ("get", "/api/v1/bets", None),
        ("post", "/api/v1/withdrawals", {"amount_u": 1_000_000, "destination": ADDRESS}),
        ("get", "/api/v1/withdrawals", None),
        ("get", "/api/v1/rounds/current", None),
        ("get", "/api/v1/rounds", None),
        ("get", "/api/v1/me", None),
        ("post", "/api/v1/deposits/webhook", {"tx_id": "x", "amount_u": 1}),
        ("post", "/api/v1/auth/token", {"email": bettor.email, "password": "secret-pass-123"}),
        ("get", "/rounds/current", None),
        ("post", "/withdrawals", {"amount_u": 1_000_000, "destination": ADDRESS}),
        ("post", "/simulate/deposit_webhook", {"user_id": str(bettor.pk), "amount_u": 5_000_000}),
    ]
    for method, path, body in hostile:
        response = getattr(bettor_api, method)(path, body, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
        assert response.status_code == 503, path
        assert response.json() == {
            "code": "maintenance",
            "detail": "The house is in maintenance (restore drill); try again later.",
        }, path
        assert response["Retry-After"] == "120"
    assert LedgerBatch.objects.count() == batches  # nothing got through
    assert user_balance_u(user_id=bettor.pk) == 10_000_000

    # what stays reachable: liveness, readiness (it says so), the admin, the ops API
    assert client.get("/healthz").status_code == 200
    assert client.get("/health").json()["maintenance"] is True
    assert client.get("/admin/login/").status_code == 200
    assert staff_api.get("/api/v1/ops/health").json()["maintenance"]["active"] is True
    response = staff_api.post("/api/v1/ops/maintenance", {"active": False, "reason": "drill over"}, format="json")
    assert response.status_code == 200 and response.json()["active"] is False
    # and the API serves again
    response = bettor_api.post(
        "/api/v1/bets", {"side": "UP", "stake_u": 1_000_000}, format="json", HTTP_IDEMPOTENCY_KEY=new_key()
    )
    assert response.status_code == 201
    assert client.get("/health").json()["maintenance"] is False


def test_maintenance_is_switched_only_with_a_reason_and_the_permission():
    auditor = UserFactory(is_staff=True)  # staff without the ops-switch permission
    response = api_client_for(auditor).post("/api/v1/ops/maintenance", {"active": True, "reason": "x"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    refused("maintenance", "on", code="reason_required")
    assert maintenance_get() is None
    assert not AuditEvent.objects.filter(action__startswith="ops.maintenance").exists()


def test_an_unreadable_maintenance_flag_refuses_the_request(client, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("database down")

    monkeypatch.setattr("ops.selectors.switches_on", broken)  # the one read of the switches a request makes
    response = client.get("/api/v1/rounds/current")
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    assert client.get("/healthz").status_code == 200


def test_beat_tasks_skip_in_maintenance_and_write_nothing():
    from ops.tasks import beat_heartbeat, evaluate_alerts, evaluate_circuit_breaker
    from rounds.tasks import lifecycle_tick
    from withdrawals.tasks import withdrawals_process_batch

    bettor = UserFactory()
    fund(bettor, 10_000_000)
    queued, _ = withdrawal_request(user=bettor, amount_u=4_000_000, destination=ADDRESS, source="api")
    due = round_create(code="20250908", lock_in=-timedelta(minutes=1))  # past its lock_at
    ops_maintenance(active=True, reason="restore drill", source="cli")
    quiet()
    last_write = database_last_write()
    counts = (LedgerBatch.objects.count(), AuditEvent.objects.count(), Alert.objects.count(), Round.objects.count())

    skipped = {"skipped": "maintenance", "reason": "restore drill"}
    assert withdrawals_process_batch.apply().get() == skipped
    assert lifecycle_tick.apply().get() == skipped
    assert evaluate_alerts.apply().get() == skipped
    assert evaluate_circuit_breaker.apply().get() == skipped

    assert Withdrawal.objects.get(pk=queued.pk).status == Withdrawal.Status.QUEUED
    assert Round.objects.get(pk=due.pk).status == Round.Status.OPEN
    assert (LedgerBatch.objects.count(), AuditEvent.objects.count(), Alert.objects.count(), Round.objects.count()) == (
        counts
    )
    assert database_last_write() == last_write
    # the heartbeat alone keeps running: it proves the beat is alive, and holds no data
    beat_heartbeat.apply()
    assert Heartbeat.objects.filter(name="beat").exists()
    assert database_last_write() == last_write

    # maintenance off: the same task pays the withdrawal (so the skip above was maintenance, nothing else)
    ops_maintenance(active=False, source="cli")
    assert withdrawals_process_batch.delay().get()["completed"] == 1
    assert Withdrawal.objects.get(pk=queued.pk).status == Withdrawal.Status.COMPLETED


@pytest.mark.postgres
def test_restore_refuses_while_another_session_is_mid_write(tmp_path):
    """PostgreSQL: a session holding an uncommitted write (any table, even the heartbeat) blocks the restore."""
    run("backup", "--dir", str(tmp_path))
    backup = next(p for p in tmp_path.iterdir() if p.suffix == ".dump")
    run("maintenance", "on", "--reason", "restore drill")
    quiet()
    holding, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                heartbeat_beat(name="straggler")
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        refused("restore", str(backup), "--quiet-seconds", str(QUIET), code="database_busy")
    finally:
        release.set()
        thread.join(30)
    assert not AuditEvent.objects.filter(action="ops.restore").exists()
    assert OpsSwitch.objects.get(name=OpsSwitch.Name.MAINTENANCE).active
