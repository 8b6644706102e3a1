"""Find a real PostgreSQL for the test suite, or start one.

Order: TEST_DATABASE_URL when set; else the server on 127.0.0.1:5432 when it
answers (development and CI machines run one, trust auth); else a throw-away
cluster started here from Debian's initdb/pg_ctl in a temporary directory and
stopped when the test process exits. The choice is written to stderr and kept
in POSTGRES_FOR_TESTS so the pytest header can say which one was used.
"""

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

POSTGRES_FOR_TESTS = {"source": "", "url": ""}


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_private_cluster() -> str:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError(
            "No PostgreSQL for the tests: TEST_DATABASE_URL is unset, nothing answers on "
            "127.0.0.1:5432, and initdb/pg_ctl are not installed (apt-get install -y postgresql)."
        )
    data_root = tempfile.mkdtemp(prefix="updown-pg-")
    data_dir = os.path.join(data_root, "data")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data_root, user="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", data_dir, "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            data_dir,
            "-l",
            os.path.join(data_root, "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
        ],
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", data_dir, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data_root, ignore_errors=True)

    atexit.register(stop)
    for _ in range(50):
        if _answers("127.0.0.1", port):
            break
        time.sleep(0.1)
    return f"postgres://postgres@127.0.0.1:{port}/updown"


def postgres_url_for_tests() -> str:
    if POSTGRES_FOR_TESTS["url"]:
        return POSTGRES_FOR_TESTS["url"]
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        source = "TEST_DATABASE_URL"
    elif _answers("127.0.0.1", 5432):
        url, source = "postgres://postgres@127.0.0.1:5432/updown", "the server answering on 127.0.0.1:5432"
    else:
        url = _start_private_cluster()
        source = "a private cluster started from initdb/pg_ctl for this run"
    # Child processes (gunicorn, celery workers started by tests) reuse the same server.
    os.environ["TEST_DATABASE_URL"] = url
    POSTGRES_FOR_TESTS.update(source=source, url=url)
    print(f"[tests] PostgreSQL: {source} ({url})", file=sys.stderr)
    return url
