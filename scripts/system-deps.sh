#!/usr/bin/env bash
# The system packages `make run`, `make test` and CI need, installed only when missing:
# Python 3.11 (venv), PostgreSQL (the money tests' second pass), Redis (production-like broker),
# Chromium (the admin's browser tests) and wrk (bench/). apt-get as root, sudo otherwise;
# a clear sentence and exit 1 when neither can install what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v python3.11 >/dev/null || need+=(python3.11 python3.11-venv)
{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "system-deps: missing ${need[*]}; run 'make system-deps' as root (or with sudo), or install them" \
        "with 'apt-get install ${need[*]}'." >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "system-deps: missing ${need[*]} and this machine has no apt-get: install them with its package manager." >&2
    exit 1
fi
echo "system-deps: installing ${need[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
