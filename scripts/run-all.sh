#!/usr/bin/env bash
# Start the web server and one Celery worker with embedded beat; Ctrl-C stops all of them.
# Each runs in its own process group (set -m), so Ctrl-C reaches this script alone (not `make` above it, whose
# "wait: No child processes" it used to print): it then asks the worker for a warm shutdown (it stops its pool
# and beat itself) and stops runserver's group (the reloader and its child).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
ADDRESS="${HOST:-127.0.0.1}:${PORT:-8000}"

# The metrics shared by web, worker and commands (config/settings/local.py) start from zero with each run.
rm -rf "${VAR_DIR:-var}/prometheus"
mkdir -p "${VAR_DIR:-var}/prometheus"

set -m
pids=()
stop() {
    trap - INT TERM EXIT
    echo "Stopping web, worker and beat..."
    kill -TERM "$worker" 2>/dev/null || true
    kill -TERM -- "-$web" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "Stopped."
    exit 0
}
trap stop INT TERM EXIT
"$BIN/celery" -A config worker --beat --loglevel=INFO --concurrency=2 \
    --schedule=var/celerybeat-schedule &
worker=$!
pids+=("$worker")
"$BIN/python" manage.py runserver "$ADDRESS" &
web=$!
pids+=("$web")
echo "Up/Down House: http://$ADDRESS/admin/ (Ctrl-C stops web, worker and beat)"
wait -n || true
