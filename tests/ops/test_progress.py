"""Long commands show progress on stderr (a bar on a terminal, periodic lines elsewhere); results stay on stdout."""

from io import StringIO

import pytest
from django.core.management import call_command

from common.progress import progress, step


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_periodic_lines_with_counts_and_eta(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("common.progress.time.monotonic", clock)
    out = StringIO()
    with progress("seed: bettors", 10_000, stream=out, every=5) as advance:
        for _ in range(4):
            clock.now += 3
            advance(1_000)
    assert out.getvalue().splitlines() == [
        "seed: bettors: 2,000/10,000 (20%), 6 s elapsed, ETA 24 s",
        "seed: bettors: 4,000/10,000 (40%), 12 s elapsed, ETA 18 s",
        "seed: bettors: 4,000/10,000 (40%), 12 s elapsed, ETA 18 s",
    ]


def test_a_step_says_what_runs_and_how_long_it_took(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("common.progress.time.monotonic", clock)
    out = StringIO()
    with step("Settling round 20250908 (AUTO)", stream=out):
        clock.now += 2.25
    assert out.getvalue() == "Settling round 20250908 (AUTO)…\nSettling round 20250908 (AUTO): done in 2.2 s\n"


@pytest.mark.django_db
def test_seed_prints_bettors_on_stdout_and_progress_on_stderr():
    out, err = StringIO(), StringIO()
    call_command("seed", "--users", "3", "--password", "pw-123456", stdout=out, stderr=err)
    assert out.getvalue().count("@example.com password pw-123456") == 3
    assert "Created 3 bettor(s)." in out.getvalue()
    assert err.getvalue().startswith("seed: bettors: 3/3 (100%), ")
    assert "seed: bettors" not in out.getvalue()
