"""Backup and restore: pg_dump/pg_restore on PostgreSQL, the SQLite online backup API on SQLite.

A backup is `updown-<vendor>-<UTC timestamp>.<ext>` in BACKUP_DIR with a sha256sum-style
`.sha256` beside it. A restore verifies the checksum and that the file is one of ours
(our tables, the same database vendor) before it touches anything, refuses while the web
or the beat look alive unless forced, and runs the ledger audit afterwards.
"""

import glob
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ops.exceptions import BackupInvalid, OpsError, RestoreRefused

NAME = re.compile(r"^updown-(postgresql|sqlite)-\d{8}T\d{6}Z\.(dump|sqlite3)$")
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
    from ops.services import audit_record

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


def services_running() -> list[str]:
    """What looks alive: a fresh beat heartbeat, a gunicorn pidfile whose process exists."""
    from ops.selectors import heartbeat_age_seconds

    alive = []
    age = heartbeat_age_seconds()
    if age is not None and age < settings.OPS_HEARTBEAT_STALE_SECONDS:
        alive.append(f"beat (heartbeat {int(age)} s ago)")
    pidfile = Path(os.environ.get("GUNICORN_PIDFILE", Path(settings.VAR_DIR) / "gunicorn.pid"))
    if pidfile.is_file():
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 0)
            alive.append(f"web (gunicorn pid {pid})")
        except (ValueError, ProcessLookupError):
            pass
        except PermissionError:
            alive.append(f"web (pidfile {pidfile})")
    return alive


@dataclass(frozen=True)
class Restored:
    path: Path
    ledger_ok: bool
    ledger_report: object


def backup_restore(*, path: Path, force: bool = False, actor=None, source: str = "cli", reason: str = "") -> Restored:
    path = Path(path)
    backup_verify(path=path)  # before anything is touched
    alive = services_running()
    if alive and not force:
        raise RestoreRefused(
            f"Refusing to restore while these look alive: {', '.join(alive)}. Stop them first, or pass --force."
        )
    if connection.vendor == "postgresql":
        args, env = _pg_args()
        connection.close()
        done = subprocess.run(
            [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(path)],
            env=env,
            capture_output=True,
        )
        if done.returncode != 0:
            raise OpsError(f"pg_restore failed (nothing changed): {done.stderr.decode()[-500:]}", code="restore_failed")
    else:
        connection.ensure_connection()
        source_db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            source_db.backup(connection.connection)
        finally:
            source_db.close()
    from ledger.selectors import ledger_audit

    report = ledger_audit()
    _audit(
        "ops.restore",
        path=path,
        reason=reason,
        actor=actor,
        source=source,
        after={"ledger_audit_ok": report.ok, "forced": force},
    )
    return Restored(path=path, ledger_ok=report.ok, ledger_report=report)
