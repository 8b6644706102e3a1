"""The House Operating Manual's checks as an operator runs them, exit codes included (a real shell process).

Step 8 checks completion with `settle_round --code $TODAY --result AUTO` on a settled round: exit 0 and a
sentence saying what is recorded; another result stays refused with exit 1; a second `lock_round` exits 0.
Steps 6 and 8 then curl /rounds/current and expect SETTLED (tests/rounds/test_rounds_api.py).
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_runbook_check_commands_exit_0_on_a_settled_round(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings.local"}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "-v0").returncode == 0
    assert manage("open_round", "--code", "20250908").returncode == 0
    assert manage("lock_round", "--code", "20250908").returncode == 0
    again = manage("lock_round", "--code", "20250908")
    assert again.returncode == 0
    assert again.stdout.startswith("Round 20250908 is already LOCKED at ") and "; nothing changed." in again.stdout
    # no bets: VOID (one operator may void; a result chosen by hand would wait for a second person)
    assert manage("settle_round", "--code", "20250908", "--result", "VOID").returncode == 0
    assert "INFO" not in manage("settle_round", "--code", "20250908", "--result", "AUTO").stderr

    check = manage("settle_round", "--code", "20250908", "--result", "AUTO")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("Round 20250908 is already SETTLED (VOID) at ")
    assert check.stdout.rstrip().endswith("; nothing changed.")
    assert check.stdout.count(" EST") + check.stdout.count(" EDT") == 1

    other = manage("settle_round", "--code", "20250908", "--result", "DOWN")
    assert other.returncode == 1
    assert "[round_already_settled]" in other.stderr and other.stdout == ""
    assert manage("lock_round", "--code", "20250908").returncode == 0
