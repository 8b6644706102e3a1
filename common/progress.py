"""Progress of long commands, on stderr (their results go to stdout).

On a terminal: a rich progress bar with counts, rate and ETA (or a spinner with the elapsed time for a step
that has no count). Elsewhere (logs, cron, CI): a plain line at most every `every` seconds and at the end,
e.g. `seed: 4,000/10,000 (40%), 12 s elapsed, ETA 18 s`.
"""

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _seconds(value: float) -> str:
    value = int(value)
    return f"{value} s" if value < 120 else f"{value // 60} min {value % 60:02d} s"


@contextmanager
def progress(label: str, total: int, *, stream: Any = None, every: float = 5.0) -> Iterator[Callable[[int], None]]:
    """`with progress("seed", 10_000) as advance: ... advance(1)` — a bar on a terminal, periodic lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        raw = getattr(stream, "_out", stream)  # Django's OutputWrapper adds a newline to every write
        with Progress(
            TextColumn(f"{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=raw),
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=total)

            def advance_bar(count: int = 1) -> None:
                bar.advance(task, count)

            yield advance_bar
        return
    started = last = time.monotonic()
    done = 0

    def line() -> str:
        elapsed = time.monotonic() - started
        text = f"{label}: {done:,}/{total:,}"
        if total:
            text += f" ({done * 100 // total}%)"
        text += f", {_seconds(elapsed)} elapsed"
        if 0 < done < total:
            text += f", ETA {_seconds(elapsed / done * (total - done))}"
        return text

    def advance(count: int = 1) -> None:
        nonlocal done, last
        done += count
        now = time.monotonic()
        if now - last >= every:
            last = now
            stream.write(line() + "\n")
            stream.flush()

    yield advance
    stream.write(line() + "\n")
    stream.flush()


@contextmanager
def step(label: str, *, stream: Any = None) -> Iterator[None]:
    """One long step without a count (a settlement's single transaction, a dump): what runs, then how long it took."""
    stream = stream or sys.stderr
    started = time.monotonic()
    if stream.isatty():
        console = Console(file=getattr(stream, "_out", stream))
        with console.status(f"{label}…"):
            yield
        console.print(f"{label}: done in {time.monotonic() - started:.1f} s")
        return
    stream.write(f"{label}…\n")
    stream.flush()
    yield
    stream.write(f"{label}: done in {time.monotonic() - started:.1f} s\n")
    stream.flush()
