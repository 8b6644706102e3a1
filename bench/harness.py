"""What every bench scenario shares: its database, Django, a real gunicorn, wrk, and the results table.

Never imported by the application or the test suite. Each scenario measures its figure and a baseline
in the same run (so the machine's noise cancels in the ratio), and returns `Row`s; `report` prints the
table and appends it to bench/RESULTS.md with the date and the machine.
"""

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
PREFIX = os.environ.get("BENCH_DB_PREFIX", "bench")
PORT = int(os.environ.get("BENCH_PORT", "18200"))
WORK_DIR = Path(os.environ.get("BENCH_DIR", "/tmp/updown-bench"))


@dataclass
class Row:
    scenario: str
    goal: str
    figure: str
    baseline: str
    ratio: str
    met: bool | None  # None: no goal to meet (a figure for the record)


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url + "/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


_own_cluster: Path | None = None


def pg_server() -> str:
    """The PostgreSQL URL (without database) to use: the one on 127.0.0.1, else one the bench starts."""
    global PG_URL, _own_cluster
    if _pg_answers(PG_URL):
        return PG_URL
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    if bindir is None:
        sys.exit("bench: no PostgreSQL answers on 127.0.0.1 and none is installed (apt-get install postgresql).")
    data = WORK_DIR / "pgdata"
    port = PORT + 90
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        _as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
    _as_postgres_user(
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(WORK_DIR / "pg.log"), "-w", "start", "-o",
         f"-p {port} -k {WORK_DIR} -c listen_addresses=127.0.0.1 -c fsync=off"]
    )  # fmt: skip
    _own_cluster = bindir
    PG_URL = f"postgres://postgres@127.0.0.1:{port}"
    return PG_URL


def _as_postgres_user(argv: list[str]) -> None:
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(WORK_DIR, "postgres")
        for path in WORK_DIR.rglob("*"):
            shutil.chown(path, "postgres")
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def pg_server_stop() -> None:
    if _own_cluster is not None:
        _as_postgres_user([str(_own_cluster / "pg_ctl"), "-D", str(WORK_DIR / "pgdata"), "-w", "stop"])


def database_fresh(name: str) -> str:
    """Drop and create `<prefix>_<name>`; its URL."""
    import psycopg

    server = pg_server()
    dbname = f"{PREFIX}_{name}"
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return f"{server}/{dbname}"


def django_setup(url: str) -> None:
    """Django in this process on `url` (local settings: the in-process scenarios), migrated."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("VAR_DIR", str(WORK_DIR / "var"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sql(statement: str, params: list | tuple = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# --- gunicorn and wrk ------------------------------------------------------------------------


def gunicorn_env(url: str, port: int) -> dict[str, str]:
    """Production settings, as an operator runs them, on loopback."""
    var = WORK_DIR / "var"
    var.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-" + "x" * 50,
        "DEPOSIT_WEBHOOK_SECRET": "bench-webhook-secret-" + "y" * 20,
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/13"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TRUSTED_PROXY_COUNT": "0",
        "SECURE_SSL_REDIRECT": "false",
        "VAR_DIR": str(var),
        "WEB_CONCURRENCY": "4",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_PIDFILE": str(var / f"gunicorn-{port}.pid"),
        "LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def gunicorn(url: str, port: int = PORT) -> Iterator[str]:
    """A real gunicorn (config/gunicorn.py, 4 sync workers, production settings): its base URL."""
    log = open(WORK_DIR / f"gunicorn-{port}.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        env=gunicorn_env(url, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        global gunicorn_pid
        gunicorn_pid = process.pid
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


gunicorn_pid = 0


@contextlib.contextmanager
def profiled(name: str, seconds: int) -> Iterator[None]:
    """With BENCH_PROFILE=1: py-spy samples every gunicorn worker while the block runs; prints the
    functions where the time goes (inclusive) and leaves the raw stacks in WORK_DIR/<name>.pyspy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if os.environ.get("BENCH_PROFILE") != "1" or not Path(spy).exists():
        yield
        return
    out = WORK_DIR / f"{name}.pyspy"
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(gunicorn_pid), "--subprocesses", "--format", "raw", "--duration",
         str(seconds), "--rate", "200", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        recorder.wait(timeout=seconds + 30)
        _profile_summary(out)


def _profile_summary(path: Path, top: int = 25) -> None:
    if not path.exists():
        return
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a frame name py-spy could not decode cleanly
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    print(f"  py-spy: {total} samples; inclusive share of the frames in the project (and the top others):")
    shown = 0
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1]):
        if shown >= top:
            break
        if "site-packages" in frame and shown > top // 2 and "django/db" not in frame:
            continue
        print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
        shown += 1


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: gunicorn exited ({process.returncode}); see {WORK_DIR}/gunicorn-*.log")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    # Let every worker import the app before measuring: a few warm-up requests.
                    for _ in range(16):
                        urllib.request.urlopen(base + "/healthz", timeout=5).read()
                    return
        except OSError:
            time.sleep(0.3)
    sys.exit("bench: gunicorn did not answer /healthz within 60 s")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx answers
    output: str


def wrk(url: str, *, seconds: int, connections: int = 32, threads: int = 2, script: str | None = None,
        args: list[str] = ()) -> Wrk:  # fmt: skip
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing; `make system-deps` installs it.")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    if args:
        argv += ["--", *args]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return Wrk(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        p99_ms=_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
        errors=sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", out)),
        output=out,
    )


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


# --- the table ---------------------------------------------------------------------------------


def machine() -> str:
    load = os.getloadavg()[0]
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pg = ""
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG_URL + "/postgres") as conn:
            pg = ", PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return (
        f"{platform.node()} ({cores} cores, {memory_gib:.0f} GiB{pg}, Python {platform.python_version()}), "
        f"load {load:.1f} at start"
    )


def report(rows: list[Row], *, title: str, note: str = "", write: bool = True) -> None:
    header = ["scenario", "goal", "figure", "baseline (same run)", "ratio", "met"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | --- | ---: | ---: | ---: | :---: |",
    ]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.scenario} | {row.goal} | {row.figure} | {row.baseline} | {row.ratio} | {met} |")
    table = "\n".join(lines)
    print()
    print(table)
    if note:
        print(note)
    if write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        with RESULTS.open("a") as results:
            results.write(f"\n## {title}: {stamp}\n\nMachine: {_machine_line}.\n\n{table}\n")
            if note:
                results.write(f"\n{note}\n")


_machine_line = ""


def machine_record() -> None:
    global _machine_line
    _machine_line = machine()
    print("machine:", _machine_line)
