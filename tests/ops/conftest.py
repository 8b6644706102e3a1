import datetime as dt

import pytest
from django.utils import timezone

from betting.models import Bet
from ops.services import heartbeat_beat
from rounds.models import Round
from tests.factories import UserFactory


def make_round(code: str = "20250908", *, status: str = Round.Status.OPEN, up_u: int = 0, down_u: int = 0, **extra):
    """A round row for ops tests (no money moved: the ops rules only read rounds)."""
    now = timezone.now()
    fields = {
        "symbol": "NDX",
        "status": status,
        "lock_at": now + dt.timedelta(hours=1),
        "settle_at": now + dt.timedelta(hours=2),
        "fee_bps": 100,
        "commit_hash": "0" * 64,
        "up_pool_u": up_u,
        "down_pool_u": down_u,
    }
    fields.update(extra)
    return Round.objects.create(code=code, **fields)


def make_bet(round_, user=None, *, side: str = "UP", stake_u: int = 1_000_000, **extra) -> Bet:
    return Bet.objects.create(round=round_, user=user or UserFactory(), side=side, stake_u=stake_u, **extra)


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def fresh_heartbeat(db):
    heartbeat_beat(name="beat")


@pytest.fixture
def ops_token(settings):
    settings.OPS_TOKEN = "test-ops-token"
    return "test-ops-token"


def restore_confirmed(backup, *, reason: str = "drill", quiet_seconds: int = 1) -> str:
    """The restore procedure of the README: maintenance on, a quiet period, read the loss, confirm its SHA."""
    import io
    import re
    import time

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from ops.selectors import maintenance_get

    if maintenance_get() is None:
        call_command("maintenance", "on", "--reason", reason)
    time.sleep(quiet_seconds + 0.05)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"\[loss_not_confirmed\]"):
        call_command("restore", str(backup), "--quiet-seconds", str(quiet_seconds), stdout=out)
    sha = re.search(r"Loss SHA-256: ([0-9a-f]{64})", out.getvalue()).group(1)
    call_command(
        "restore",
        str(backup),
        "--quiet-seconds",
        str(quiet_seconds),
        "--confirm-loss",
        sha,
        "--reason",
        reason,
        stdout=out,
    )
    return out.getvalue()
