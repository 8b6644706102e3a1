"""backup -> change data -> restore -> the original data, on SQLite and (the `money` pass) on PostgreSQL.

The restore follows the README's procedure (tests.ops.conftest.restore_confirmed): maintenance on,
a quiet period, the loss list read and confirmed by its SHA-256. tests/proof/test_maintenance_restore.py
proves each refusal.
"""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from betting.models import User
from ledger.selectors import tvl_get, user_balance_u
from ops.models import OpsSwitch
from ops.services import heartbeat_beat
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.ops.conftest import restore_confirmed


def latest_backup(directory: Path) -> Path:
    return sorted(p for p in directory.iterdir() if p.suffix in (".dump", ".sqlite3"))[-1]


@pytest.mark.money
@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_brings_back_the_original(tmp_path):
    # given a bettor with 100 USDC, backed up
    bettor = UserFactory()
    fund(bettor, 100_000_000)
    call_command("backup", "--dir", str(tmp_path), "--reason", "drill")
    backup = latest_backup(tmp_path)
    assert Path(f"{backup}.sha256").read_text().endswith(f"  {backup.name}\n")

    # when data changes after the backup
    fund(bettor, 25_000_000)
    UserFactory(email="after-backup@example.com")
    assert user_balance_u(user_id=bettor.pk) == 125_000_000

    # and the backup is restored
    out = restore_confirmed(backup, reason="drill")

    # then the original data is back, the ledger audit passes, the restore is audited, and
    # maintenance is still on in the restored database (the backup's row said off)
    assert "deposit #" in out and "25.000000 USDC (25000000 u)" in out
    assert user_balance_u(user_id=bettor.pk) == 100_000_000
    assert not User.objects.filter(email="after-backup@example.com").exists()
    assert tvl_get().cash_u == 100_000_000
    assert_ledger_invariants()
    assert "Ledger audit passed after restore." in out
    assert AuditEvent.objects.filter(action="ops.restore", object_id=backup.name).count() == 1
    assert OpsSwitch.objects.get(name=OpsSwitch.Name.MAINTENANCE).active


@pytest.mark.django_db
def test_restore_refuses_a_corrupt_file_before_touching_anything(tmp_path):
    bettor = UserFactory()
    backup = tmp_path / "updown-sqlite-20250101T000000Z.sqlite3"
    backup.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    Path(f"{backup}.sha256").write_text("0" * 64 + f"  {backup.name}\n")
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("restore", str(backup))
    assert User.objects.filter(pk=bettor.pk).exists()


@pytest.mark.django_db
def test_restore_refuses_a_foreign_file(tmp_path):
    import hashlib
    import sqlite3

    foreign = tmp_path / "updown-sqlite-20250101T000000Z.sqlite3"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE something_else (id integer)")
    db.commit()
    db.close()
    Path(f"{foreign}.sha256").write_text(f"{hashlib.sha256(foreign.read_bytes()).hexdigest()}  {foreign.name}\n")
    with pytest.raises(CommandError, match="not an Up/Down House backup"):
        call_command("restore", str(foreign))


@pytest.mark.django_db
def test_restore_refuses_unknown_names_and_missing_checksums(tmp_path):
    stranger = tmp_path / "dump.sql"
    stranger.write_text("DROP TABLE users;")
    with pytest.raises(CommandError, match="not named like one of our backups"):
        call_command("restore", str(stranger))
    with pytest.raises(CommandError, match="No backup file"):
        call_command("restore", str(tmp_path / "nothing.dump"))


@pytest.mark.django_db(transaction=True)
def test_a_live_beat_heartbeat_does_not_block_a_restore_in_maintenance(tmp_path):
    # the old rule refused on a fresh heartbeat (and missed every web server); the beat honours
    # maintenance, and its heartbeat is the one write that keeps going, holding no data
    call_command("backup", "--dir", str(tmp_path))
    backup = latest_backup(tmp_path)
    call_command("maintenance", "on", "--reason", "drill")
    heartbeat_beat()
    restore_confirmed(backup)
    assert AuditEvent.objects.get(action="ops.restore").after["ledger_audit_ok"] is True


@pytest.mark.money
@pytest.mark.django_db(transaction=True)
def test_a_named_operator_restores_only_with_a_second(tmp_path):
    import re
    import time
    from io import StringIO

    from approvals.models import ApprovalRequest
    from tests.factories import role_user

    bettor = UserFactory()
    fund(bettor, 100_000_000)
    role_user("operator", email="a@example.com")
    role_user("operator", email="b@example.com")
    call_command("backup", "--dir", str(tmp_path), "--reason", "drill")
    backup = latest_backup(tmp_path)
    fund(bettor, 25_000_000)
    call_command("maintenance", "on", "--reason", "restore drill")

    def run(*extra: str) -> str:
        time.sleep(1.05)  # the quiet period
        out = StringIO()
        call_command("restore", str(backup), "--quiet-seconds", "1", "--reason", "drill", *extra, stdout=out)
        return out.getvalue()

    def loss_sha() -> str:
        out = StringIO()
        time.sleep(1.05)
        with pytest.raises(CommandError, match=r"\[loss_not_confirmed\]"):
            call_command("restore", str(backup), "--quiet-seconds", "1", stdout=out)
        return re.search(r"Loss SHA-256: ([0-9a-f]{64})", out.getvalue()).group(1)

    with pytest.raises(CommandError, match=r"\[four_eyes_required\]"):
        run("--confirm-loss", loss_sha(), "--actor", "a@example.com")
    request = ApprovalRequest.objects.get(kind="restore")
    assert user_balance_u(user_id=bettor.pk) == 125_000_000  # nothing restored
    with pytest.raises(CommandError, match=r"\[own_request\]"):
        run("--confirm-loss", loss_sha(), "--approve", str(request.pk), "--actor", "a@example.com")
    out = run("--confirm-loss", loss_sha(), "--approve", str(request.pk), "--actor", "b@example.com")
    assert "Ledger audit passed after restore." in out
    assert user_balance_u(user_id=bettor.pk) == 100_000_000
    event = AuditEvent.objects.get(action="ops.restore")
    assert event.actor.email == "b@example.com" and "requested by a@example.com" in event.reason
