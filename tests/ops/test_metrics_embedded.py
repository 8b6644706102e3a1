"""Embedded mode (`make run`): a settlement done by a command (or the worker) reaches the web's /metrics.

Issue 15 saw `betting_settlement_duration_seconds_count 0.0` after two settlements: each process kept its
own counters. config/settings/local.py now gives web, worker and commands one multiprocess directory.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def test_two_settlements_by_commands_are_counted_in_the_webs_metrics(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    _manage(env, "migrate", "-v0")
    for code in ("20250908", "20250909"):
        _manage(env, "open_round", "--code", code)
        _manage(env, "lock_round", "--code", code)
        _manage(env, "settle_round", "--code", code, "--result", "VOID")

    # what the web process answers on /metrics (ops.dashboard.metrics_text), in a process of its own
    scrape = "import django; django.setup(); from ops.dashboard import metrics_text; print(metrics_text().decode())"
    done = subprocess.run(
        [sys.executable, "-c", scrape], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "betting_settlement_duration_seconds_count 2.0" in done.stdout
    assert (tmp_path / "prometheus").is_dir()
