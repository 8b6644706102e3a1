"""`manage.py dashboard`: the state of the house in a terminal, for incidents when no browser is at hand.

In a terminal it redraws every --refresh seconds until `q` or Ctrl-C, on the alternate screen, so
the shell is left as it was. With --once, or when stdout is not a terminal (watch, logs, tickets),
or on a terminal that cannot redraw (TERM=dumb), it prints one plain snapshot; --json prints the
snapshot as one JSON object. NO_COLOR is honoured (rich reads it). Nothing is written.

Exit status: 0; 2 with a sentence when the database cannot be read or the house is in maintenance
(--once, --json, plain output); a bad --refresh is a usage error.
"""

import json
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created
from rich.console import Console
from rich.live import Live

from common.commands import bounded_int
from ops.terminal import dashboard_render, dashboard_snapshot, dashboard_trouble

PLAIN_WIDTH = 140  # a snapshot in a log or a ticket: wide enough for the two columns side by side
# A table a restore holds locked must not freeze the screen: a read waits at most this long, then the
# panel says the database cannot be read, and the next refresh tries again.
STATEMENT_TIMEOUT_MS = 5000


def _statement_timeout(sender: Any = None, connection: Any = connection, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")


@contextmanager
def _reads_bounded() -> Iterator[None]:
    """While the dashboard runs, each PostgreSQL connection it opens (again, after an outage) has a
    statement timeout; a connection that was already open (a test's) gets it back as it was."""
    connection_created.connect(_statement_timeout, dispatch_uid="dashboard_statement_timeout")
    if connection.connection is not None:
        _statement_timeout()
    try:
        yield
    finally:
        connection_created.disconnect(dispatch_uid="dashboard_statement_timeout")
        if connection.connection is not None and connection.vendor == "postgresql":
            with suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")


@contextmanager
def _keys(stream: TextIO) -> Iterator[int | None]:
    """stdin in cbreak mode (keys arrive one at a time, Ctrl-C still interrupts); restored on the way out."""
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd) if stream.isatty() else None
    except (AttributeError, OSError, ValueError, termios.error):
        fd, saved = -1, None
    if saved is None:
        yield None
        return
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(fd: int | None, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a key; True when it was q."""
    if fd is None:
        time.sleep(timeout)
        return False
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready and b"q" in os.read(fd, 64).lower():
            return True
    return False


class Command(BaseCommand):
    help = (
        "The operator's terminal dashboard: current round, TVL and withdrawals, switches, alerts, last settlement, "
        "price feed, heartbeats. Redraws until q or Ctrl-C; --once or a pipe prints one snapshot; --json for scripts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--refresh",
            type=bounded_int(1, 3600),
            default=2,
            metavar="SECONDS",
            help="seconds between two redraws (1 to 3600, default 2)",
        )
        parser.add_argument("--once", action="store_true", help="print one plain snapshot and exit")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one snapshot as a JSON object and exit"
        )

    def handle(self, *args: Any, refresh: int, once: bool, as_json: bool, **options: Any) -> None:
        out = cast(TextIO, self.stdout._out)  # the raw stream: rich writes its own line ends
        with _reads_bounded():
            if as_json:
                self._print_json(out)
            elif once or not out.isatty() or os.environ.get("TERM", "") in ("dumb", "unknown"):
                self._print_plain(out)
            else:
                self._live(out, refresh)

    def _print_json(self, out: TextIO) -> None:
        snapshot = dashboard_snapshot()
        out.write(json.dumps(snapshot, sort_keys=True) + "\n")
        self._exit_if_trouble(snapshot)

    def _print_plain(self, out: TextIO) -> None:
        snapshot = dashboard_snapshot()
        width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else PLAIN_WIDTH
        console = Console(file=out, force_terminal=False, color_system=None, width=width, highlight=False, emoji=False)
        console.print(dashboard_render(snapshot))
        self._exit_if_trouble(snapshot)

    @staticmethod
    def _exit_if_trouble(snapshot: dict[str, Any]) -> None:
        trouble = dashboard_trouble(snapshot)
        if trouble is not None:
            raise CommandError(trouble, returncode=2)

    def _live(self, out: TextIO, refresh: int) -> None:
        console = Console(file=out, highlight=False, emoji=False)
        try:
            with (
                _keys(sys.stdin) as fd,
                Live(
                    dashboard_render(dashboard_snapshot(), live=True),
                    console=console,
                    screen=True,
                    auto_refresh=False,
                ) as live,
            ):
                live.refresh()
                while not _quit_pressed(fd, refresh):
                    snapshot = dashboard_snapshot()
                    live.update(dashboard_render(snapshot, live=True), refresh=True)
        except KeyboardInterrupt:
            pass  # Ctrl-C is the other way out: the screen and the terminal mode are already restored
