"""Backup files: their names, checksums and provenance, the vendor tools, and reading their rows without restoring.

Used by ops.backup (create, restore) and ops.restore_loss (what a restore erases). The tables
a backup must hold come from the apps that own them (each app's `*_tables()` selector).
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
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection

from betting.selectors import betting_tables
from ledger.selectors import ledger_tables
from ops.exceptions import BackupInvalid, OpsError
from rounds.selectors import rounds_tables

NAME = re.compile(r"^updown-(postgresql|sqlite)-(\d{8}T\d{6}Z)\.(dump|sqlite3)$")


def our_tables() -> tuple[str, ...]:
    """Tables every backup of ours holds: the ledger's, rounds' and bets' (named by their owners) and migrations."""
    ledger = ledger_tables()
    return (
        ledger["entries"],
        ledger["accounts"],
        rounds_tables()["rounds"],
        betting_tables()["bets"],
        "django_migrations",
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pg_tool(name: str) -> str:
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


def pg_args() -> tuple[list[str], dict]:
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
    actual = file_sha256(path)
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
        listing = subprocess.run([pg_tool("pg_restore"), "--list", str(path)], capture_output=True)
        if listing.returncode != 0:
            raise BackupInvalid(f"{path.name} is not a pg_dump custom-format archive.")
        text = listing.stdout.decode(errors="replace")
        tables = {name for name in our_tables() if re.search(rf"TABLE \S+ {name} ", text)}
    missing = [name for name in our_tables() if name not in tables]
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
            [pg_tool("pg_restore"), "--data-only", f"--table={table}", "--file=-", str(path)],
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
