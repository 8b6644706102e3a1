"""Backup and restore: pg_dump/pg_restore on PostgreSQL, the SQLite online backup API on SQLite.

A backup is `updown-<vendor>-<UTC timestamp>.<ext>` in BACKUP_DIR with a sha256sum-style
`.sha256` beside it. A restore:
1. verifies the checksum and that the file is one of ours (our tables, the same vendor);
2. runs only in maintenance mode (ops.maintenance: every web process, worker and beat honours
   it) and only once nothing has written to the database for RESTORE_QUIET_SECONDS;
3. lists what it will erase (ops.restore_loss: deposits, withdrawals, settlements, rounds,
   bets, ledger batches the backup does not hold, with amounts) and goes ahead only when the
   operator confirms that list by its SHA-256 (`--confirm-loss`);
4. afterwards, in the restored database: maintenance stays ON (the backup's own switch row
   says off; resuming is the operator's call), an audit row, a P0 alert, the ledger audit.
"""

import glob
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ops.exceptions import BackupInvalid, LossNotConfirmed, OpsError, ReasonRequired, RestoreRefused

NAME = re.compile(r"^updown-(postgresql|sqlite)-(\d{8}T\d{6}Z)\.(dump|sqlite3)$")
OUR_TABLES = ("ledger_entries", "ledger_accounts", "rounds", "bets", "django_migrations")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_tool(name: str) -> str:
    """The pg_dump/pg_restore matching the server's major version (newer client tools refuse nothing, older do)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        major = int(cursor.fetchone()[0]) // 10000
    candidate = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise OpsError(f"{name} is not installed (apt-get install postgresql-client-{major}).", code="tool_missing")
    return found


def _pg_args() -> tuple[list[str], dict]:
    db = connection.settings_dict
    args = ["-d", db["NAME"]]
    if db.get("HOST"):
        args += ["-h", db["HOST"]]
    if db.get("PORT"):
        args += ["-p", str(db["PORT"])]
    if db.get("USER"):
        args += ["-U", db["USER"]]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def _audit(action: str, *, path: Path, reason: str, actor, source: str, after: dict) -> None:
    from audit.services import audit_record

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


def backup_create(*, directory: Path | None = None, actor=None, source: str = "cli", reason: str = "") -> Backup:
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
        args, env = _pg_args()
        done = subprocess.run(
            [_pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(partial), *args], env=env, capture_output=True
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
    sha = _sha256(path)
    Path(f"{path}.sha256").write_text(f"{sha}  {path.name}\n")
    _audit("ops.backup", path=path, reason=reason, actor=actor, source=source, after={"sha256": sha})
    return Backup(path=path, sha256=sha, size=path.stat().st_size)


def backup_verify(*, path: Path) -> str:
    """Checksum and provenance: raise BackupInvalid unless this is an intact backup of ours for this database."""
    path = Path(path)
    if not path.is_file():
        raise BackupInvalid(f"No backup file at {path}.")
    match = NAME.match(path.name)
    if not match:
        raise BackupInvalid(f"{path.name} is not named like one of our backups (updown-<db>-<UTC time>.<ext>).")
    if match.group(1) != connection.vendor:
        raise BackupInvalid(f"{path.name} is a {match.group(1)} backup; this database is {connection.vendor}.")
    checksum = Path(f"{path}.sha256")
    if not checksum.is_file():
        raise BackupInvalid(f"The checksum file {checksum.name} is missing.")
    expected = checksum.read_text().split()[0] if checksum.read_text().split() else ""
    actual = _sha256(path)
    if actual != expected:
        raise BackupInvalid(f"Checksum mismatch for {path.name}: the file is corrupt or was changed.")
    if match.group(1) == "sqlite":
        try:
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                integrity = source.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                source.close()
        except sqlite3.DatabaseError as exc:
            raise BackupInvalid(f"{path.name} is not a readable SQLite database: {exc}") from exc
        if integrity != "ok":
            raise BackupInvalid(f"{path.name} fails SQLite's integrity check: {integrity}")
    else:
        listing = subprocess.run([_pg_tool("pg_restore"), "--list", str(path)], capture_output=True)
        if listing.returncode != 0:
            raise BackupInvalid(f"{path.name} is not a pg_dump custom-format archive.")
        text = listing.stdout.decode(errors="replace")
        tables = {name for name in OUR_TABLES if re.search(rf"TABLE \S+ {name} ", text)}
    missing = [name for name in OUR_TABLES if name not in tables]
    if missing:
        raise BackupInvalid(f"{path.name} is not an Up/Down House backup (missing tables: {', '.join(missing)}).")
    return actual


def backup_taken_at(*, path: Path) -> datetime:
    """When the backup was started (UTC, from its name): everything written after it is in doubt."""
    match = NAME.match(Path(path).name)
    if not match:
        raise BackupInvalid(f"{Path(path).name} is not named like one of our backups (updown-<db>-<UTC time>.<ext>).")
    return datetime.strptime(match.group(2), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# --- reading a backup's rows without restoring it ------------------------------------------------

COPY_HEADER = re.compile(r"^COPY (?P<table>\S+) \((?P<columns>.*)\) FROM stdin;$")
COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _copy_value(text: str) -> str | None:
    """One field of PostgreSQL's COPY text format (\\N is NULL, backslash escapes)."""
    if text == "\\N":
        return None
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: COPY_ESCAPES.get(m.group(1), m.group(1)), text)


def _pg_backup_rows(path: Path, table: str, columns: list[str]) -> Iterator[dict]:
    """Stream one table of a pg_dump archive (`pg_restore --data-only` to stdout): no database needed."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [_pg_tool("pg_restore"), "--data-only", f"--table={table}", "--file=-", str(path)],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        header: list[str] | None = None
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode().rstrip("\n")
            if header is None:
                match = COPY_HEADER.match(line)
                if match and match.group("table").split(".")[-1].strip('"') == table:
                    header = [name.strip().strip('"') for name in match.group("columns").split(",")]
                continue
            if line == "\\.":
                header = None
                continue
            row = dict(zip(header, line.split("\t"), strict=False))
            yield {name: _copy_value(row[name]) if row.get(name) is not None else None for name in columns}
        if process.wait() != 0:
            errors.seek(0)
            raise BackupInvalid(f"pg_restore cannot read {table} from {path.name}: {errors.read().decode()[-300:]}")


def _sqlite_backup_rows(path: Path, table: str, columns: list[str]) -> Iterator[dict]:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            cursor = source.execute(f'SELECT {", ".join(columns)} FROM "{table}"')  # our own table and column names
        except sqlite3.OperationalError:
            return  # the table is not in this backup (an older schema): none of its rows are
        for values in cursor:
            yield dict(zip(columns, values, strict=True))
    finally:
        source.close()


def backup_rows(*, path: Path, table: str, columns: Iterable[str]) -> Iterator[dict]:
    """Rows of `table` as the backup holds them (values as text on PostgreSQL), one at a time."""
    path, columns = Path(path), list(columns)
    if path.name.startswith("updown-postgresql-"):
        return _pg_backup_rows(path, table, columns)
    return _sqlite_backup_rows(path, table, columns)


# --- "nothing wrote for N seconds" ---------------------------------------------------------------


@dataclass(frozen=True)
class LastWrite:
    at: datetime
    where: str  # "table.column"


def _write_clocks() -> list[tuple[str, object, str]]:
    """Every timestamp a live process stamps on what it writes (not the beat heartbeat: it holds no data)."""
    from rest_framework.authtoken.models import Token

    from audit.models import AuditEvent
    from betting.models import Bet, User
    from ledger.models import LedgerBatch
    from marketdata.models import CalendarOverride, OfficialClose
    from ops.models import Alert, OpsSwitch
    from rounds.models import Round, RoundSettlement
    from withdrawals.models import Deposit, DepositIntent, SimulatedPayout, Withdrawal

    return [
        ("ledger_batches", LedgerBatch, "created_at"),  # every money movement; entries share its transaction
        ("bets", Bet, "created_at"),
        ("deposits", Deposit, "created_at"),
        ("deposit_intents", DepositIntent, "created_at"),
        ("withdrawals", Withdrawal, "updated_at"),
        ("simulated_payouts", SimulatedPayout, "created_at"),
        ("round_settlements", RoundSettlement, "created_at"),
        ("rounds", Round, "created_at"),
        ("rounds", Round, "locked_at"),
        ("rounds", Round, "settled_at"),
        ("rounds", Round, "overdue_since"),
        ("official_closes", OfficialClose, "updated_at"),
        ("calendar_overrides", CalendarOverride, "created_at"),
        ("users", User, "date_joined"),
        ("users", User, "last_login"),
        ("authtoken_token", Token, "created"),
        ("audit_events", AuditEvent, "ts"),
        ("ops_switches", OpsSwitch, "changed_at"),  # turning maintenance on starts the quiet clock
        ("ops_alerts", Alert, "last_seen_at"),
    ]


def database_last_write() -> LastWrite | None:
    """The latest write any process stamped, across the tables that hold what a restore would erase."""
    from django.db.models import Max

    latest: LastWrite | None = None
    for table, model, column in _write_clocks():
        if table == "ledger_batches":
            # The biggest table: its newest rows by primary key (indexed), not a scan of the column.
            stamps = model.objects.order_by("-pk").values_list(column, flat=True)[:100]
            at = max(stamps, default=None)
        else:
            at = model.objects.aggregate(latest=Max(column))["latest"]
        if at is not None and (latest is None or at > latest.at):
            latest = LastWrite(at=at, where=f"{table}.{column}")
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
    from ops.selectors import maintenance_get

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
    ledger_report: object
    loss: object  # ops.restore_loss.Loss: what the restore erased


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
        args, env = _pg_args()
        with connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            schema = cursor.fetchone()[0]
        connection.close()
        with tempfile.TemporaryDirectory(prefix="updown-restore-") as scratch:
            script, tail = Path(scratch) / "restore.sql", Path(scratch) / "maintenance.sql"
            done = subprocess.run(
                [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "-f", str(script), str(path)],
                capture_output=True,
            )
            if done.returncode != 0:
                raise OpsError(
                    f"pg_restore failed (nothing changed): {done.stderr.decode()[-500:]}", code="restore_failed"
                )
            tail.write_text(_maintenance_kept_sql(f"{schema}.ops_switches", maintenance_reason))
            # One transaction for the whole script and the switch: an error anywhere changes nothing.
            done = subprocess.run(
                [
                    _pg_tool("psql"),
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
                patched.execute(_maintenance_kept_sql("ops_switches", maintenance_reason))
                patched.commit()
                patched.backup(connection.connection)
            finally:
                patched.close()


def backup_restore(
    *,
    path: Path,
    confirm_loss: str = "",
    quiet_seconds: int | None = None,
    actor=None,
    source: str = "cli",
    reason: str = "",
) -> Restored:
    """Replace the database with the backup at `path`, once every refusal above has passed.

    Without `confirm_loss` equal to the loss list's SHA-256 this raises LossNotConfirmed carrying
    the list, having changed nothing.
    """
    from ops.restore_loss import restore_loss

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

    _restore_database(path, maintenance_reason=f"restored from {path.name}: check it, then `maintenance off`")
    from ledger.selectors import ledger_audit

    report = ledger_audit()
    _after_restore(
        path=path, backup_sha=backup_sha, loss=loss, ledger_ok=report.ok, actor=actor, source=source, reason=reason
    )
    return Restored(path=path, ledger_ok=report.ok, ledger_report=report, loss=loss)


def _after_restore(*, path: Path, backup_sha: str, loss, ledger_ok: bool, actor, source: str, reason: str) -> None:
    """Into the restored database, so they survive: the audit row and the P0 alert."""
    from audit.services import audit_record
    from ops.alerts import Finding, alert_raise

    now = timezone.now()
    with transaction.atomic():
        audit_record(
            action="ops.restore",
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
