"""Real processes for the chaos days: a private redis-server and a Celery worker to kill -9.

The same shape as tests/proof/test_kill9.py: `celery -A config worker --pool=solo` (through
risk.chaos_worker, on the simulated clock: CHAOS_CLOCK) on this run's database and a private broker
(never the shared 6379), killed with SIGKILL while a second connection holds the ledger row its
transaction needs next, so it dies mid-transaction.
"""

import os
import shutil
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
DEFAULT_PORTS = "18700-18799"


def chaos_ports() -> range:
    """The chaos days' ports (stub vendors, the custodian, redis-server, gunicorn): CHAOS_PORTS="FIRST-LAST"."""
    first, _, last = os.environ.get("CHAOS_PORTS", DEFAULT_PORTS).partition("-")
    return range(int(first), int(last or first) + 1)


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
    """redis-server on the first free port of the chaos ports, no persistence; `stop()` ends it."""

    def __init__(self) -> None:
        ports = chaos_ports()
        port = next((p for p in ports if not _answers(p)), None)
        if port is None:
            raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")
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


def child_env(**extra_env: str) -> dict[str, str]:
    """The environment of a process of ours (worker, web) on this database."""
    settings_dict = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        ),
        **extra_env,
    }
    if os.environ.get("DJANGO_SETTINGS_MODULE") == "config.settings.test":  # pytest: the test database
        env["TEST_DB"] = "postgres"
        env["TEST_DATABASE_URL"] = env["DATABASE_URL"]
    return env


class Worker:
    """One Celery worker process on this database and `broker_url`."""

    def __init__(self, broker_url: str, **extra_env: str) -> None:
        self.broker_url = broker_url
        self.env = child_env(CELERY_BROKER_URL=broker_url, CELERY_TASK_ALWAYS_EAGER="false", **extra_env)
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


class Gunicorn:
    """gunicorn (config/gunicorn.py, `workers` sync workers) on this database, on the first free chaos port, its
    clock set to `clock` (risk.chaos_web) and ticking on; `kill9_worker` kills one worker, the master respawns it."""

    def __init__(self, *, clock: str, workers: int = 2, **extra_env: str) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="chaos-web-"))
        self.log = self.var / "gunicorn.log"
        self.workers_wanted = workers
        self.env = child_env(
            CHAOS_CLOCK=clock,
            WEB_CONCURRENCY=str(workers),
            VAR_DIR=str(self.var),
            PROMETHEUS_MULTIPROC_DIR=str(self.var / "prometheus"),
            GUNICORN_PIDFILE=str(self.var / "gunicorn.pid"),
            **extra_env,
        )
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "Gunicorn":
        for port in chaos_ports():
            if _answers(port):
                continue
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "risk.chaos_web", "-c", "config/gunicorn.py", "config.wsgi"],
                    cwd=BASE_DIR, env={**self.env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            if self._up(port):
                self.url = f"http://127.0.0.1:{port}"
                return self
            # another run took the port between the look and the bind (gunicorn gave up): the next one
        raise RuntimeError(f"gunicorn found no free port in {chaos_ports()}")

    def _up(self, port: int) -> bool:
        """Its workers are up and it listens on `port` (True), or it gave up binding it (False)."""
        assert self.process is not None
        process = self.process
        wait_for(
            lambda: process.poll() is not None or (len(self.workers()) == self.workers_wanted and _answers(port)),
            "gunicorn to listen",
        )
        return process.poll() is None

    def workers(self) -> list[int]:
        """The master's live children (its workers), by pid."""
        assert self.process is not None
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return sorted(int(pid) for pid in children)

    def worker_serving(self, client_port: int) -> int:
        """The worker whose PostgreSQL connection comes from local TCP port `client_port` (from /proc)."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(fields[9])
        for pid in self.workers():
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        raise RuntimeError(f"no gunicorn worker holds a connection from port {client_port}")

    def kill9_worker(self, pid: int) -> None:
        """SIGKILL one worker; returns once the master has respawned a replacement."""
        before = set(self.workers())
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: pid not in self.workers() and len(set(self.workers()) - before) >= 1,
            "the master to respawn the killed worker",
        )
        wait_for(lambda: len(self.workers()) == self.workers_wanted, "gunicorn's workers")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.var, ignore_errors=True)


def backend_client_port(pid: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    if not row or row[0] is None or row[0] < 0:
        raise RuntimeError(f"backend {pid} has no TCP client port")
    return int(row[0])


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
