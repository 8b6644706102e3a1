"""`manage.py dashboard`: the operator's terminal, as an operator reads it during an incident.

The round is made through the real doors (funded bettors, bet_place), the breaker opened and the
alerts evaluated by the services, so the figures on the screen are the house's own.
"""

import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from betting.models import Bet
from betting.services import bet_place
from ledger.selectors import tvl_get
from ledger.services import account_ensure_round_pool
from ops.alerts import alerts_evaluate
from ops.migration_state import migrations_pending, migrations_pending_forget
from ops.rules import WITHDRAWAL_FAILURE_WINDOW, withdrawal_backlog_cutoff
from ops.services import circuit_breaker_open, circuit_breaker_reset, heartbeat_beat, ops_maintenance
from ops.terminal import dashboard_snapshot
from rounds.selectors import rounds_board
from tests.factories import UserFactory, fund
from tests.ops.conftest import make_round
from withdrawals.selectors import withdrawals_queue
from withdrawals.services import withdrawal_request

ET = ZoneInfo("America/New_York")
LOCK_IN = dt.timedelta(hours=2, minutes=30, seconds=40)


def the_incident() -> dict:
    """An OPEN round with three bettors, the breaker open by hand, its P1 alert raised, one withdrawal queued."""
    now = timezone.now()
    round_ = make_round("20261201", lock_at=now + LOCK_IN, settle_at=now + LOCK_IN + dt.timedelta(minutes=5, seconds=1))
    account_ensure_round_pool(round_code=round_.code)
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    for user in (alice, bob, carol):
        fund(user, 2_000_000_000)
    bet_place(user=alice, side="UP", stake_u=1_200_000_000, round_code=round_.code)
    bet_place(user=bob, side="UP", stake_u=34_500_000, round_code=round_.code)
    bet_place(user=bob, side="UP", stake_u=500_000, round_code=round_.code)
    bet_place(user=carol, side="DOWN", stake_u=765_432_100, round_code=round_.code)
    withdrawal_request(user=carol, amount_u=250_000_000, source="api")
    heartbeat_beat(name="beat")
    circuit_breaker_open(rule="", reason="price feed disagrees with the close", source="cli")
    alerts_evaluate(now=now)
    return {"round": round_, "lock_at": round_.lock_at}


def once(*args: str) -> str:
    out = io.StringIO()
    call_command("dashboard", "--once", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_once_shows_the_round_pools_time_to_lock_the_breaker_and_the_p1_alert(monkeypatch):
    incident = the_incident()
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: no sentence wraps inside its panel

    text = once()

    # the round, its pools in USDC with thousands separators, each side's share, bettors, concentration
    assert "20261201 NDX  OPEN" in text
    assert "1,235.00 USDC  61.7%" in text  # UP: 1 200 + 34.5 + 0.5 USDC of 2 000.4321
    assert "765.4321 USDC  38.3%" in text  # DOWN: the exact micro-USDC kept
    assert "pool             2,000.4321 USDC" in text
    assert "bettors          3" in text
    assert "top UP bettor    97.2% of UP (1,200.00 USDC)" in text  # alice's share of her side
    assert "top DOWN bettor  100.0% of DOWN (765.4321 USDC)" in text
    # lock time in New York with the zone named, counting down
    lock_local = incident["lock_at"].astimezone(ET)
    assert f"{lock_local:%Y-%m-%d %H:%M:%S %Z}" in text
    assert lock_local.tzname() in ("EST", "EDT")
    assert re.search(r"\(in 2h 30m [34]\ds\)", text), text
    # the breaker with its reason, red; the P1 alert it raised
    assert "Switches [RED]" in text
    assert "circuit breaker  OPEN: price feed disagrees with the close" in text
    assert "Open alerts [RED]" in text
    # alice's 97 % of the UP side is over the 80 % share: risk.exposure's P2 alert, and the round is red
    assert "P0: 0  P1: 1  P2: 1  P3: 0" in text
    assert "Round [RED]" in text
    assert "One bettor holds 97% of round 20261201's UP side (limit 80%)" in text
    assert re.search(r"P1\s+\d+s\s+Circuit breaker is OPEN: price feed disagrees with the close", text), text
    # TVL and the queue
    assert "locked               2,000.4321 USDC" in text
    assert "pending withdrawals  250.00 USDC" in text
    assert re.search(r"queued\s+1\s+250\.00 USDC", text)
    # plain: no colour codes, and no key hint for a screen that does not redraw
    assert "\x1b[" not in text
    assert "q or Ctrl-C" not in text


@pytest.mark.django_db
def test_json_is_one_object_whose_numbers_are_the_selectors():
    the_incident()
    out = io.StringIO()

    call_command("dashboard", "--json", stdout=out)

    snapshot = json.loads(out.getvalue())
    now = timezone.now()
    board = rounds_board(now=now)
    assert board.current is not None
    current = board.current
    holders = current.holders  # the round row's counters, as rounds_board reads them
    assert snapshot["round"] | {"seconds_to_lock": 0, "seconds_to_settle": 0} == {
        "code": current.code,
        "symbol": "NDX",
        "status": "OPEN",
        "lock_at": current.lock_at.astimezone(ET).isoformat(),
        "settle_at": current.settle_at.astimezone(ET).isoformat(),
        "seconds_to_lock": 0,
        "seconds_to_settle": 0,
        "up_pool_u": current.up_pool_u,
        "down_pool_u": current.down_pool_u,
        "pool_u": current.pool_u,
        "bettors": holders.bettors,
        "up_top_u": holders.up_top_u,
        "down_top_u": holders.down_top_u,
        "top_u": holders.top_u,
        "unusual_betting": "one bettor holds 97% of round 20261201's UP side (limit 80%)",
    }
    assert (current.up_pool_u, current.down_pool_u, holders.bettors) == (1_235_000_000, 765_432_100, 3)
    assert (holders.up_top_u, holders.down_top_u, holders.top_u) == (1_200_000_000, 765_432_100, 1_200_000_000)
    tvl = tvl_get()
    queue = withdrawals_queue(
        backlog_before=withdrawal_backlog_cutoff(now), failed_since=now - WITHDRAWAL_FAILURE_WINDOW
    )
    assert snapshot["tvl"] == {
        "locked_u": tvl.locked_u,
        "cash_u": tvl.cash_u,
        "pending_withdrawals_u": tvl.pending_withdrawals_u,
        "queue": {
            "queued": {"count": queue.queued.count, "amount_u": queue.queued.amount_u},
            "processing": {"count": 0, "amount_u": 0},
            "reconciliation": {"count": 0, "amount_u": 0},
        },
        "backlog": 0,
        "failed_last_hour": 0,
    }
    assert (tvl.locked_u, tvl.pending_withdrawals_u, queue.queued.amount_u) == (2_000_432_100, 250_000_000, 250_000_000)
    assert [(a["severity"], a["key"]) for a in snapshot["alerts"]] == [
        ("P1", "circuit_breaker"),
        ("P2", "exposure_side_share:20261201"),
    ]
    breaker = next(s for s in snapshot["switches"] if s["name"] == "circuit_breaker")
    assert (breaker["active"], breaker["reason"]) == (True, "price feed disagrees with the close")
    assert snapshot["levels"] == {
        "round": "red",  # the exposure concern above
        "tvl": "ok",
        "switches": "red",
        "alerts": "red",
        "settlement": "ok",
        "feed": "ok",
        "heartbeats": "ok",
    }
    assert snapshot["heartbeats"]["migrations_pending"] == migrations_pending() == []


@pytest.mark.django_db
def test_a_refresh_reads_nine_statements_and_writes_nothing():
    the_incident()
    migrations_pending_forget()

    with CaptureQueriesContext(connection) as cold:  # also reads the migration state (2 statements)
        dashboard_snapshot()
    with CaptureQueriesContext(connection) as warm:  # the migration state is cached for a few seconds
        dashboard_snapshot()

    for queries in (cold, warm):
        statements = [q["sql"] for q in queries.captured_queries]
        assert not [s for s in statements if re.match(r"\s*(INSERT|UPDATE|DELETE)", s, re.I)], statements
    # 9 a refresh (the price feed takes 3: the day's calendar, the newest tick per symbol, the sources; the
    # round's holders come with its row), and 2 more once every MIGRATION_STATUS_CACHE_SECONDS for the migrations
    assert (len(cold.captured_queries), len(warm.captured_queries)) == (11, 9)


@pytest.mark.django_db
def test_the_last_settlement_says_how_it_was_decided_by_whom_and_how_long_after_settle_at():
    from rounds.models import RoundSettlement

    now = timezone.now()
    settled = make_round(
        "20261130",
        status="SETTLED",
        result="UP",
        lock_at=now - dt.timedelta(hours=3),
        settle_at=now - dt.timedelta(hours=2),
        settled_at=now - dt.timedelta(hours=2) + dt.timedelta(minutes=1, seconds=5),
        close_source="quorum:3/3",
    )
    operator = UserFactory(is_staff=True, email="ops@example.com")
    RoundSettlement.objects.create(
        round=settled,
        result="UP",
        requested_result="AUTO",
        up_pool_u=3_000_000_000,
        down_pool_u=1_000_000_000,
        fee_u=10_000_000,
        dust_u=0,
        paid_out_u=3_990_000_000,
        bets_count=1_234,
        winners_count=800,
        digest="d" * 64,
        source="admin",
        reason="close confirmed",
        settled_by=operator,
    )

    snapshot = dashboard_snapshot()
    text = _plain(snapshot)

    assert snapshot["settlement"]["last"]["seconds_after_settle_at"] == 65.0
    assert "20261130  UP  (1,234 bets)" in text
    assert "official close (quorum:3/3), by ops@example.com" in text
    assert "1m 05s after settle_at" in text
    assert "paid out  3,990.00 USDC, fee 10.00 USDC" in text


@pytest.mark.django_db
def test_panels_turn_red_by_the_rules_thresholds(settings):
    """The same settings the breaker and alert rules read colour the panels: no copy of a threshold."""
    the_incident()
    settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = 1_000_000_000  # the round's 2 000 USDC pool is big enough
    settings.OPS_BREAKER_STAKE_SHARE = 0.5  # alice holds 97 % of the UP side
    settings.OPS_HEARTBEAT_STALE_SECONDS = 0  # the beat's heartbeat is already older than that
    settings.ALERT_WITHDRAWAL_BACKLOG_SECONDS = 0

    snapshot = dashboard_snapshot(now=timezone.now() + dt.timedelta(seconds=1))

    assert snapshot["levels"]["round"] == "red"
    assert snapshot["round"]["unusual_betting"] == "one bettor holds 97% of round 20261201's UP side (limit 50%)"
    assert snapshot["levels"]["heartbeats"] == "red"
    assert snapshot["levels"]["tvl"] == "amber"  # the backlog alert is P2
    assert snapshot["tvl"]["backlog"] == 1


@pytest.mark.django_db
def test_maintenance_shows_only_the_switches_and_once_exits_2_with_a_sentence():
    the_incident()
    ops_maintenance(active=True, reason="restore drill", source="cli")
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"in maintenance \(restore drill\).*\[maintenance\]") as refused:
        call_command("dashboard", "--once", stdout=out)

    assert refused.value.returncode == 2
    assert "Maintenance [AMBER]" in out.getvalue()
    assert "maintenance      ON: restore drill" in out.getvalue()
    assert "Round" not in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5", "3601"])
def test_a_bad_refresh_is_a_sentence(value):
    with pytest.raises(CommandError, match=rf"--refresh: must be a whole number between 1 and 3600, got '{value}'"):
        call_command("dashboard", "--refresh", value, stdout=io.StringIO())


def _manage_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }
    for inherited in ("NO_COLOR", "COLUMNS", "LINES"):  # the terminal's own size and colours, not pytest's
        env.pop(inherited, None)
    env.update(extra)
    return env


def test_a_database_that_is_down_is_a_sentence_and_exit_2_not_a_traceback(tmp_path):
    env = _manage_env(DATABASE_URL="postgres://postgres@127.0.0.1:18699/term_nothing_listens_here")
    env["VAR_DIR"] = str(tmp_path)

    done = subprocess.run(
        [sys.executable, "manage.py", "dashboard", "--once"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2, done.stderr
    assert "Database unreachable [RED]" in done.stdout
    assert "CommandError: The database cannot be read (OperationalError:" in done.stderr
    assert "[database_unavailable]" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- The live screen, in a real terminal (tmux) ------------------------------------------------------


def _tmux(socket_name: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket_name, *args], capture_output=True, text=True, check=True).stdout


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


@contextmanager
def tmux_running(command: str, **env: str) -> Iterator[str]:
    """`sh -c command` in a 200 x 60 tmux window of its own server (-L), with the dashboard's environment."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install tmux): the terminal cannot be driven")
    socket_name = f"term-test-{uuid.uuid4().hex[:8]}"
    try:
        # The server starts with the command's environment and the pane inherits it.
        subprocess.run(
            ["tmux", "-L", socket_name, "new-session", "-d", "-x", "200", "-y", "60", "sh", "-c", command],
            env=_manage_env(**env),
            check=True,
        )
        yield socket_name
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
        (Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / socket_name).unlink(missing_ok=True)


TITLES = ("Round", "TVL and withdrawals", "Settlement", "Switches", "Open alerts", "Price feed", "Heartbeats")


def _dashboard_then_shell(tmp_path, prefix: str = "") -> str:
    # The shell traps Ctrl-C (as an interactive one does) so it lives on to record the dashboard's exit status.
    return (
        f"trap true INT; cd {settings.BASE_DIR} && "
        f"{prefix}{sys.executable} manage.py dashboard --refresh 1 2>{tmp_path / 'stderr'}; "
        f"echo $? > {tmp_path / 'rc'}; echo SHELL-AGAIN; sleep 60"
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("no_color", "key"), [(False, "q"), (True, "C-c")], ids=["colour-q", "NO_COLOR-ctrl-c"])
def test_live_mode_draws_the_panels_and_q_leaves_a_clean_terminal_with_exit_0(tmp_path, no_color, key):
    the_incident()
    rc_file = tmp_path / "rc"
    extra = {"VAR_DIR": str(tmp_path), "TERM": "xterm-256color"} | ({"NO_COLOR": "1"} if no_color else {})
    with tmux_running(_dashboard_then_shell(tmp_path), **extra) as socket_name:

        def drawn() -> str:
            screen = _tmux(socket_name, "capture-pane", "-p", "-e")
            return screen if all(title in screen for title in TITLES) else ""

        screen = _wait_for(drawn)
        assert screen, _tmux(socket_name, "capture-pane", "-p") + (tmp_path / "stderr").read_text()
        assert "q or Ctrl-C quits" in screen
        assert "1,235.00 USDC" in screen and "price feed disagrees with the close" in screen
        colours = re.findall(r"\x1b\[[0-9;]*m", screen)
        coloured = [code for code in colours if re.search(r"\[(3[0-7]|38;|9[0-7])", code)]
        assert (not coloured) if no_color else coloured, colours[:20]

        _tmux(socket_name, "send-keys", key)

        assert _wait_for(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=30) == "0"
        after = _wait_for(lambda: (s := _tmux(socket_name, "capture-pane", "-p")) and "SHELL-AGAIN" in s and s)
        assert "Round" not in after and "Traceback" not in after  # the alternate screen is gone
        assert (tmp_path / "stderr").read_text() == ""


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dumb_terminal_gets_one_plain_snapshot_and_exit_0(tmp_path):
    """TERM=dumb cannot redraw in place: one snapshot, no colour, no cursor movement, no key to wait for."""
    the_incident()
    rc_file = tmp_path / "rc"
    with tmux_running(_dashboard_then_shell(tmp_path, prefix="TERM=dumb "), VAR_DIR=str(tmp_path)) as socket_name:
        assert _wait_for(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=60) == "0"

        screen = _tmux(socket_name, "capture-pane", "-p", "-e")

    assert all(title in screen for title in TITLES), screen
    assert "\x1b[" not in screen
    assert "q or Ctrl-C" not in screen
    assert "SHELL-AGAIN" in screen  # printed below the snapshot: it stayed on the primary screen


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_table_a_restore_holds_locked_does_not_freeze_the_dashboard(monkeypatch):
    """pg_restore holds its tables ACCESS EXCLUSIVE: the read gives up after the statement timeout."""
    import psycopg

    from ops.management.commands import dashboard

    monkeypatch.setattr(dashboard, "STATEMENT_TIMEOUT_MS", 300)
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    ) as restore:
        restore.execute("LOCK TABLE ops_switches IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        out = io.StringIO()

        with pytest.raises(
            CommandError, match=r"cannot be read \(OperationalError: canceling statement due to statement timeout\)"
        ) as e:
            call_command("dashboard", "--once", stdout=out)

    assert e.value.returncode == 2
    assert "Database unreachable [RED]" in out.getvalue()
    with connection.cursor() as cursor:  # the test's own connection is as it was
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


@pytest.mark.django_db
def test_the_holders_are_kept_with_each_bet_and_equal_a_count_of_the_bets():
    """bettors and the largest stakes come off the round's row (no read of the bets), and they are what a
    GROUP BY over the round's bets says, after each new bet, a bettor's second bet and a bet on the other side."""
    incident = the_incident()
    code = incident["round"].code
    circuit_breaker_reset(reason="drill over", source="cli")  # so that more bettors can come in
    newcomer = UserFactory()
    fund(newcomer, 2_000_000_000)

    def counted() -> tuple[int, int, int, int]:
        per_user: dict = {}
        for bet in Bet.objects.filter(round__code=code):
            up_u, down_u = per_user.get(bet.user_id, (0, 0))
            per_user[bet.user_id] = (up_u + bet.stake_u, down_u) if bet.side == "UP" else (up_u, down_u + bet.stake_u)
        totals = per_user.values()
        return (
            len(per_user),
            max(u for u, _ in totals),
            max(d for _, d in totals),
            max(u + d for u, d in totals),
        )

    seen = []
    for side, stake_u in (("DOWN", 5_000_000), ("DOWN", 770_000_000), ("UP", 500_000_000)):
        bet_place(user=newcomer, side=side, stake_u=stake_u, round_code=code)
        with CaptureQueriesContext(connection) as queries:
            snapshot = dashboard_snapshot()
        assert not [q for q in queries.captured_queries if re.search(r"\bbets\b", q["sql"])]
        row = snapshot["round"]
        seen.append((row["bettors"], row["up_top_u"], row["down_top_u"], row["top_u"]))
        assert seen[-1] == counted()
    assert seen == [
        (4, 1_200_000_000, 765_432_100, 1_200_000_000),
        (4, 1_200_000_000, 775_000_000, 1_200_000_000),
        (4, 1_200_000_000, 775_000_000, 1_275_000_000),
    ]


def _plain(snapshot: dict) -> str:
    from rich.console import Console

    from ops.terminal import dashboard_render

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(dashboard_render(snapshot))
    return console.file.getvalue()


@pytest.mark.django_db
def test_the_withdrawal_queue_by_state_with_counts_and_amounts():
    from withdrawals.models import Withdrawal

    user = UserFactory()
    fund(user, 100_000_000_000)
    made = [
        withdrawal_request(user=user, amount_u=amount_u, source="api")[0]
        for amount_u in (1_000_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000)
    ]
    Withdrawal.objects.filter(pk__in=[made[1].pk, made[2].pk]).update(status="PROCESSING")
    Withdrawal.objects.filter(pk=made[2].pk).update(needs_reconciliation=True)
    Withdrawal.objects.filter(pk=made[3].pk).update(status="FAILED")
    Withdrawal.objects.filter(pk=made[4].pk).update(status="COMPLETED")

    tvl = dashboard_snapshot()["tvl"]

    assert tvl["queue"] == {
        "queued": {"count": 1, "amount_u": 1_000_000_000},
        "processing": {"count": 1, "amount_u": 2_500_000},
        "reconciliation": {"count": 1, "amount_u": 3_000_000},
    }
    assert (tvl["failed_last_hour"], tvl["backlog"]) == (1, 0)
    text = _plain(dashboard_snapshot())
    assert re.search(r"queued\s+1\s+1,000\.00 USDC", text)
    assert re.search(r"needs reconciliation\s+1\s+3\.00 USDC", text)
    assert "1 failed in the last hour" in text
