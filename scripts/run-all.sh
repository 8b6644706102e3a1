#!/usr/bin/env bash
# Start the web server and one Celery worker with embedded beat; Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

trap 'trap - INT TERM EXIT; kill 0 2>/dev/null; wait' INT TERM EXIT
"$BIN/celery" -A config worker --beat --loglevel=INFO --concurrency=2 \
    --schedule=var/celerybeat-schedule &
"$BIN/python" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}" &
echo "Up/Down House: http://${HOST:-127.0.0.1}:${PORT:-8000}/admin/ (Ctrl-C stops web, worker and beat)"
wait -n
