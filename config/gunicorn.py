"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi`.

Prometheus multiprocess mode: every worker writes its counters and histograms to
PROMETHEUS_MULTIPROC_DIR (default var/prometheus); `/metrics` sums the files of all
workers. The directory is wiped when the master starts (stale files from a previous
run would add old counts), and a dead worker's live gauges are dropped in child_exit.
The variable is set here, in the master, before any worker imports prometheus_client.
"""

import json
import os
import shutil
from pathlib import Path

from gunicorn import util

_base = Path(__file__).resolve().parent.parent
_multiproc = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(os.environ.get("VAR_DIR", _base / "var")) / "prometheus")
)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
pidfile = os.environ.get("GUNICORN_PIDFILE", str(Path(os.environ.get("VAR_DIR", _base / "var")) / "gunicorn.pid"))


# gunicorn answers requests it cannot parse (a request line over limit_request_line, headers over
# limit_request_field_size, a malformed line) itself, before Django runs, with an HTML page and no
# `code`, and it has no setting or hook for that body. Its workers send it through util.write_error,
# so that one function is replaced: the same status and reason, a JSON {"code", "detail"} body.
_GUNICORN_ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "server_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int, reason, mesg):
    body = json.dumps({"code": _GUNICORN_ERROR_CODES.get(status_int, "bad_request"), "detail": mesg or reason})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body.encode())


util.write_error = write_json_error


def on_starting(server):
    shutil.rmtree(_multiproc, ignore_errors=True)
    os.makedirs(_multiproc, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
