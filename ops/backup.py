"""Backup and restore: pg_dump/pg_restore on PostgreSQL, the SQLite online backup API on SQLite.

A backup is `updown-<vendor>-<UTC timestamp>.<ext>` in BACKUP_DIR with a sha256sum-style
`.sha256` beside it (ops.backup_files). A restore:
1. verifies the checksum and that the file is one of ours (our tables, the same vendor);
2. runs only in maintenance mode (ops.maintenance: every web process, worker and beat honours
   it) and only once nothing has written to the database for RESTORE_QUIET_SECONDS;
3. lists what it will erase (ops.restore_loss: deposits, withdrawals, settlements, rounds,
   bets, ledger batches the backup does not hold, with amounts) and goes ahead only when the
   operator confirms that list by its SHA-256 (`--confirm-loss`);
4. afterwards, in the restored database: maintenance stays ON (the backup's own switch row
   says off; resuming is the operator's call), an audit row, a P0 alert, the ledger audit.

Both are a person's act: a staff actor needs the operator's `ops.change_opsswitch`, checked first.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from approvals.exceptions import FourEyesRequired
from approvals.models import ApprovalRequest
from approvals.services import approval_grant, approval_reason, approval_request
from audit.events import AuditAction
from audit.selectors import audit_last_writes
from audit.services import audit_record
from betting.selectors import betting_last_writes
from common.errors import ReasonRequired
from common.types import User
from ledger.selectors import ledger_audit, ledger_last_writes
from marketdata.selectors import marketdata_last_writes
from ops.alerts import Finding, alert_raise
from ops.backup_files import backup_verify, file_sha256, pg_args, pg_tool
from ops.exceptions import LossNotConfirmed, OpsError, RestoreRefused
from ops.restore_loss import Loss, restore_loss
from ops.selectors import maintenance_get, ops_last_writes, ops_tables
from ops.services import CHANGE_OPS_SWITCH, ops_switch_authorize
from rounds.selectors import rounds_last_writes
from withdrawals.selectors import withdrawals_last_writes


def _audit(action: AuditAction, *, path: Path, reason: str, actor: User | None, source: str, after: dict) -> None:
    with transaction.atomic():
        audit_record(
            action=action,
            source=source,
            actor=actor,
            object_type="backup",
            object_id=path.name,
            reason=reason,
            after=after,
        )


@dataclass(frozen=True)
class Backup:
    path: Path
    sha256: str
    size: int


def backup_create(
    *, directory: Path | None = None, actor: User | None = None, source: str = "cli", reason: str = ""
) -> Backup:
    ops_switch_authorize(actor=actor, act="A backup")  # before anything else: a refused person learns nothing more
    directory = Path(directory or settings.BACKUP_DIR)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".updown-write-probe"  # an unwritable directory is refused before pg_dump runs
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OpsError(
            f"Cannot write backups to {directory}: {exc.strerror or exc}.", code="backup_dir_unusable"
        ) from exc
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise OpsError(f"Backups support PostgreSQL and SQLite, not {vendor}.", code="unsupported_database")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"updown-{vendor}-{stamp}.{'dump' if vendor == 'postgresql' else 'sqlite3'}"
    partial = path.with_name(path.name + ".partial")
    if vendor == "postgresql":
        args, env = pg_args()
        done = subprocess.run(
            [pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(partial), *args], env=env, capture_output=True
        )
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise OpsError(f"pg_dump failed: {done.stderr.decode()[-500:]}", code="backup_failed")
    else:
        connection.ensure_connection()
        target = sqlite3.connect(partial)
        try:
            connection.connection.backup(target)  # online: consistent even while others write
        finally:
            target.close()
    os.replace(partial, path)
    sha = file_sha256(path)
    Path(f"{path}.sha256").write_text(f"{sha}  {path.name}\n")
    _audit(AuditAction.BACKUP, path=path, reason=reason, actor=actor, source=source, after={"sha256": sha})
    return Backup(path=path, sha256=sha, size=path.stat().st_size)


# --- "nothing wrote for N seconds" ---------------------------------------------------------------


@dataclass(frozen=True)
class LastWrite:
    at: datetime
    where: str  # "table.column"


def _write_clocks() -> dict[str, datetime | None]:
    """{"table.column": latest stamp} of every timestamp a live process stamps on what it writes, from each app
    that owns the table (not the beat heartbeat: it holds no data)."""
    clocks: dict[str, datetime | None] = {}
    for last_writes in (
        ledger_last_writes,
        betting_last_writes,
        withdrawals_last_writes,
        rounds_last_writes,
        marketdata_last_writes,
        audit_last_writes,
        ops_last_writes,
    ):
        clocks.update(last_writes())
    return clocks


def database_last_write() -> LastWrite | None:
    """The latest write any process stamped, across the tables that hold what a restore would erase."""
    latest: LastWrite | None = None
    for where, at in _write_clocks().items():
        if at is not None and (latest is None or at > latest.at):
            latest = LastWrite(at=at, where=where)
    return latest


def database_writing_sessions() -> int:
    """PostgreSQL: other sessions of this database inside a transaction that has written (holds an xid)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        return cursor.fetchone()[0]


def restore_preconditions(*, quiet_seconds: int | None = None, now: datetime | None = None) -> LastWrite | None:
    """Refuse (RestoreRefused) unless maintenance is on and nothing wrote for `quiet_seconds`."""
    quiet_seconds = settings.RESTORE_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    if quiet_seconds < 1:
        raise RestoreRefused("The quiet period must be at least 1 second (--quiet-seconds).", code="invalid_quiet")
    if maintenance_get() is None:
        raise RestoreRefused(
            "Refusing to restore outside maintenance mode: web processes, workers and the beat on any host may "
            'still be writing. Run `maintenance on --reason "..."`, wait, then restore.',
            code="maintenance_off",
        )
    writers = database_writing_sessions()
    if writers:
        raise RestoreRefused(
            f"Refusing to restore: {writers} other database session(s) are in the middle of writing. "
            "Wait for them (or find them in pg_stat_activity) and try again.",
            code="database_busy",
        )
    last = database_last_write()
    now = now or timezone.now()
    if last is not None and (now - last.at).total_seconds() < quiet_seconds:
        age = max(0.0, (now - last.at).total_seconds())
        raise RestoreRefused(
            f"Refusing to restore: the database was written {age:.1f} s ago ({last.where}), less than the "
            f"{quiet_seconds} s quiet period. Something is still running; wait and try again.",
            code="database_not_quiet",
        )
    return last


# --- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    path: Path
    ledger_ok: bool
    ledger_report: object  # ledger.selectors.LedgerAuditReport
    loss: Loss  # what the restore erased


def _maintenance_kept_sql(table: str, reason: str) -> str:
    """The statement that keeps maintenance ON in the restored data, inside the restore's own transaction."""
    reason_literal = "'" + reason.replace("'", "''") + "'"
    return (
        f"INSERT INTO {table} (name, active, reason, rule, changed_at, changed_by_id) "
        f"VALUES ('maintenance', TRUE, {reason_literal}, '', CURRENT_TIMESTAMP, NULL) "
        "ON CONFLICT (name) DO UPDATE SET active = TRUE, reason = EXCLUDED.reason, rule = '', "
        "changed_at = EXCLUDED.changed_at, changed_by_id = NULL;\n"
    )


def _restore_database(path: Path, *, maintenance_reason: str) -> None:
    """Replace the database with the backup, maintenance ON in the same step.

    The backup's own switch row says whatever it said then (usually off): restored as is, every
    process would resume the moment the restore commits, before anyone checked the data, and
    the beat would pay out again the withdrawals the backup still holds as QUEUED. So the
    switch is set in the same transaction (PostgreSQL) or in the copy being restored (SQLite).
    """
    if connection.vendor == "postgresql":
        args, env = pg_args()
        with connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            schema = cursor.fetchone()[0]
        connection.close()
        with tempfile.TemporaryDirectory(prefix="updown-restore-") as scratch:
            script, tail = Path(scratch) / "restore.sql", Path(scratch) / "maintenance.sql"
            done = subprocess.run(
                [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "-f", str(script), str(path)],
                capture_output=True,
            )
            if done.returncode != 0:
                raise OpsError(
                    f"pg_restore failed (nothing changed): {done.stderr.decode()[-500:]}", code="restore_failed"
                )
            tail.write_text(_maintenance_kept_sql(f"{schema}.{ops_tables()['switches']}", maintenance_reason))
            # One transaction for the whole script and the switch: an error anywhere changes nothing.
            done = subprocess.run(
                [
                    pg_tool("psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--single-transaction",
                    *args,
                    "-f",
                    str(script),
                    "-f",
                    str(tail),
                ],
                env=env,
                capture_output=True,
            )
            if done.returncode != 0:
                raise OpsError(
                    f"restore failed (nothing changed): {done.stderr.decode()[-500:]}", code="restore_failed"
                )
    else:
        connection.ensure_connection()
        with tempfile.TemporaryDirectory(prefix="updown-restore-") as scratch:
            copy = Path(scratch) / path.name
            shutil.copyfile(path, copy)
            patched = sqlite3.connect(copy)
            try:
                patched.execute(_maintenance_kept_sql(ops_tables()["switches"], maintenance_reason))
                patched.commit()
                patched.backup(connection.connection)
            finally:
                patched.close()


def backup_restore(
    *,
    path: Path,
    confirm_loss: str = "",
    quiet_seconds: int | None = None,
    actor: User | None = None,
    source: str = "cli",
    reason: str = "",
    approve: str = "",
) -> Restored:
    """Replace the database with the backup at `path`, once every refusal above has passed.

    Without `confirm_loss` equal to the loss list's SHA-256 this raises LossNotConfirmed carrying
    the list, having changed nothing. A named person (--actor) restores only with another
    operator: the first run records a four-eyes request for exactly this file and this loss; a
    second operator's run with `approve` = that request id restores. The shell without --actor
    keeps its own authority.
    """
    ops_switch_authorize(actor=actor, act="A restore")  # before anything else: a refused person learns nothing more
    path = Path(path)
    backup_sha = backup_verify(path=path)  # before anything is touched
    restore_preconditions(quiet_seconds=quiet_seconds)
    loss = restore_loss(path=path, backup_sha256=backup_sha)
    confirm_loss = (confirm_loss or "").strip().lower()
    if confirm_loss != loss.sha256:
        if confirm_loss:
            detail = (
                f"The loss you confirmed ({confirm_loss[:12]}…) is not the loss now ({loss.sha256[:12]}…): "
                "the database or the file changed since you read the list, or the SHA is mistyped. Nothing changed."
            )
        else:
            detail = "Nothing changed: restoring erases what is listed above."
        raise LossNotConfirmed(
            f'{detail} To restore anyway: python manage.py restore {path} --confirm-loss {loss.sha256} --reason "..."',
            loss=loss,
        )
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("A restore needs a reason (--reason); it is recorded in the audit log and the alert.")
    if actor is not None and actor.pk:
        reason = _restore_four_eyes(
            path=path, backup_sha=backup_sha, loss=loss, reason=reason, actor=actor, source=source, approve=approve
        )

    _restore_database(path, maintenance_reason=f"restored from {path.name}: check it, then `maintenance off`")
    report = ledger_audit()
    _after_restore(
        path=path, backup_sha=backup_sha, loss=loss, ledger_ok=report.ok, actor=actor, source=source, reason=reason
    )
    return Restored(path=path, ledger_ok=report.ok, ledger_report=report, loss=loss)


def _restore_four_eyes(
    *, path: Path, backup_sha: str, loss: Loss, reason: str, actor: User, source: str, approve: str
) -> str:
    """Ask (raises FourEyesRequired naming the request) or approve; returns the reason the audit row keeps."""
    # The file, not the loss: the request itself is written after the backup, so the loss list the second
    # operator confirms (--confirm-loss) is read again at their run.
    payload = {"file": path.name, "backup_sha256": backup_sha}
    if not approve:
        request, _ = approval_request(
            kind=ApprovalRequest.Kind.RESTORE,
            target=backup_sha,
            payload=payload,
            reason=reason,
            actor=actor,
            source=source,
        )
        raise FourEyesRequired(
            f"A restore needs a second operator: request {request.pk} recorded. Another operator runs "
            f"`restore {path} --confirm-loss SHA --reason ... --approve {request.pk} --actor EMAIL` (the loss list "
            "is read again then). Nothing changed."
        )
    with transaction.atomic():
        request = approval_grant(
            request_id=approve,
            kind=ApprovalRequest.Kind.RESTORE,
            permission=CHANGE_OPS_SWITCH,
            actor=actor,
            source=source,
        )
        if request.payload != payload:
            raise RestoreRefused(
                f"Request {request.pk} is for another backup ({request.payload['file']}); nothing changed.",
                code="approval_mismatch",
            )
        if request.status != ApprovalRequest.Status.APPROVED:
            raise FourEyesRequired(f"Request {request.pk} needs another approval before the restore runs.")
    return f"{approval_reason(request, actor)}: {reason}"


def _after_restore(
    *,
    path: Path,
    backup_sha: str,
    loss: Loss,
    ledger_ok: bool,
    actor: User | None,
    source: str,
    reason: str,
) -> None:
    """Into the restored database, so they survive: the audit row and the P0 alert."""
    now = timezone.now()
    if actor is not None and not type(actor).objects.filter(pk=actor.pk).exists():
        # A staff account made after the backup is not in the restored database: name it in the reason.
        reason, actor = f"{reason} (restored by {actor.email}, not in this backup)", None
    with transaction.atomic():
        audit_record(
            action=AuditAction.RESTORE,
            source=source,
            actor=actor,
            object_type="backup",
            object_id=path.name,
            reason=reason,
            before={"loss_sha256": loss.sha256, "loss": loss.summary},
            after={"ledger_audit_ok": ledger_ok, "backup_sha256": backup_sha, "maintenance": "kept on"},
        )
        alert_raise(
            finding=Finding(
                f"restore:{now:%Y%m%dT%H%M%S%f}",
                "P0",
                f"Database RESTORED from {path.name} ({reason}): erased {loss.headline}. "
                f"Ledger audit {'passed' if ledger_ok else 'FAILED'}. Maintenance stays ON until `maintenance off`.",
            ),
            now=now,
            force=True,
        )
