"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi`.

Prometheus multiprocess mode: every worker writes its counters and histograms to
PROMETHEUS_MULTIPROC_DIR (default var/prometheus); `/metrics` sums the files of all
workers. The directory is wiped when the master starts (stale files from a previous
run would add old counts), and a dead worker's live gauges are dropped in child_exit.
The variable is set here, in the master, before any worker imports prometheus_client.
"""

import os
import shutil
from pathlib import Path

_base = Path(__file__).resolve().parent.parent
_multiproc = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(os.environ.get("VAR_DIR", _base / "var")) / "prometheus")
)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
pidfile = os.environ.get("GUNICORN_PIDFILE", str(Path(os.environ.get("VAR_DIR", _base / "var")) / "gunicorn.pid"))


def on_starting(server):
    shutil.rmtree(_multiproc, ignore_errors=True)
    os.makedirs(_multiproc, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
