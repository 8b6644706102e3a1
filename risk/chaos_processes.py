"""Real processes for the chaos days: a private redis-server and a Celery worker to kill -9.

The same shape as tests/proof/test_kill9.py: `celery -A config worker --pool=solo` (through
risk.chaos_worker, on the simulated clock: CHAOS_CLOCK) on this run's database and a private broker
(never the shared 6379), killed with SIGKILL while a second connection holds the ledger row its
transaction needs next, so it dies mid-transaction.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from django.db import connection, connections

BASE_DIR = Path(__file__).resolve().parents[1]
PORTS = range(18700, 18800)  # this work's own port range


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class PrivateRedis:
    """redis-server on the first free port of PORTS, no persistence; `stop()` ends it."""

    def __init__(self) -> None:
        port = next((p for p in PORTS if not _answers(p)), None)
        if port is None:
            raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(port), "redis-server")
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class Worker:
    """One Celery worker process on this database and `broker_url`."""

    def __init__(self, broker_url: str, **extra_env: str) -> None:
        self.broker_url = broker_url
        settings_dict = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": (
                f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
                f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
            ),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **extra_env,
        }
        if os.environ.get("DJANGO_SETTINGS_MODULE") == "config.settings.test":  # pytest: the test database
            self.env["TEST_DB"] = "postgres"
            self.env["TEST_DATABASE_URL"] = self.env["DATABASE_URL"]
        self.log = Path(tempfile.mkstemp(prefix="chaos-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "risk.chaos_worker", "-A", "config", "worker", "--pool=solo",
                 "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle",
                 "-n", f"chaos-{uuid.uuid4().hex[:6]}@%h"],
                cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(lambda: b"ready." in self.log.read_bytes(), "the worker to be ready")
        return self

    def send(self, task: str, **kwargs: Any) -> None:
        client = Celery("chaos-client", broker=self.broker_url, set_as_current=False)
        client.send_task(task, kwargs=kwargs)
        client.close()

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


@contextmanager
def holding_account_row(code: str):
    """A second connection holds a ledger account row: whoever needs it next waits, mid-transaction."""
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT code FROM ledger_accounts WHERE code = %s FOR UPDATE", [code])
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()


def backend_waiting_on_a_lock(query_like: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [query_like],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def backend_gone(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 0


def kill9_while_waiting(worker: Worker, *, account: str, task: str, **kwargs: Any) -> None:
    """Send `task`, let it stop half-way on the held `account` row, kill -9 the worker, wait for its backend to end."""
    with holding_account_row(account):
        worker.send(task, **kwargs)
        backend = wait_for(lambda: backend_waiting_on_a_lock("%ledger_accounts%FOR NO KEY UPDATE%"), task)
        worker.kill9()
    wait_for(lambda: backend_gone(backend), "the dead worker's transaction to end")
