"""The operator's terminal dashboard (`manage.py dashboard`): one snapshot of the house, and how it is drawn.

`dashboard_snapshot` reads every panel through its room's selector (one call per panel, nothing
written) into a plain JSON-able dict: `--json` prints it as it is, `dashboard_render` draws it with
rich. Each panel's level (ok, amber, red) is what the alert and breaker rules of ops.rules make of
the same numbers (`*_findings`, `risk.exposure.side_share_concern`): one definition of every threshold.

A database that cannot be reached, or the house in maintenance (a restore may be running: tables
are being replaced, so nothing else is read), is a state of the snapshot, not an exception.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from rich import box
from rich.bar import Bar
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from common.money import format_usdc
from ledger.selectors import tvl_get
from marketdata.selectors import feed_status, market_timezone
from ops.migration_state import migrations_pending
from ops.models import OpsSwitch
from ops.rules import (
    LEVEL_AMBER,
    LEVEL_OK,
    LEVEL_RED,
    WITHDRAWAL_FAILURE_WINDOW,
    findings_level,
    heartbeat_findings,
    settlement_overdue_findings,
    severity_level,
    switch_findings,
    withdrawal_backlog_cutoff,
    withdrawal_backlog_findings,
    withdrawal_failure_findings,
)
from ops.selectors import alerts_open_board, heartbeats_all, switches_board
from risk.exposure import side_share_concern
from rounds.selectors import rounds_board
from withdrawals.selectors import withdrawals_queue

PANELS = ("round", "tvl", "switches", "alerts", "settlement", "feed", "heartbeats")
ALERTS_SHOWN = 8


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(market_timezone()).isoformat() if moment else None


def _age(now: datetime, moment: datetime | None) -> float | None:
    return round((now - moment).total_seconds(), 3) if moment else None


def _worst(*levels: str) -> str:
    return LEVEL_RED if LEVEL_RED in levels else LEVEL_AMBER if LEVEL_AMBER in levels else LEVEL_OK


# --- The snapshot ---------------------------------------------------------------------------------


def dashboard_snapshot(*, now: datetime | None = None) -> dict[str, Any]:
    """The state of the house as one JSON-able dict: integers in u, times ISO in America/New_York.

    No read grows with the bets or the ledger entries: who holds the current round's pools (bettors,
    largest stakes) is kept on the round's row with every bet, and TVL is a handful of accounts.
    """
    now = now or timezone.now()
    snapshot: dict[str, Any] = {
        "generated_at": _iso(now),
        "timezone": settings.MARKET_TIMEZONE,
        "database": {"ok": True, "vendor": connection.vendor, "error": ""},
        "maintenance": None,
        "levels": {},
    }
    try:
        switches = switches_board()
        snapshot["switches"] = [
            {
                "name": switch.name,
                "active": switch.active,
                "reason": switch.reason,
                "rule": switch.rule,
                "changed_at": _iso(switch.changed_at),
                "changed_by": switch.changed_by,
            }
            for switch in switches
        ]
        snapshot["levels"]["switches"] = findings_level(
            [finding for s in switches for finding in switch_findings(s.name, s.reason if s.active else None)]
        )
        maintenance = next(s for s in switches if s.name == OpsSwitch.Name.MAINTENANCE)
        if maintenance.active:
            # A restore runs only in maintenance: the other tables may be half-replaced, so read nothing more.
            snapshot["maintenance"] = {"reason": maintenance.reason, "since": _iso(maintenance.changed_at)}
            return snapshot
        panels = _panels(now)
        snapshot["levels"].update(panels.pop("levels"))
        snapshot.update(panels)
    except DatabaseError as exc:
        connection.close()  # the next refresh connects afresh
        first_line = (str(exc).strip().splitlines() or [""])[0]
        snapshot["database"] = {
            "ok": False,
            "vendor": connection.vendor,
            "error": f"{type(exc).__name__}: {first_line}",
        }
        snapshot["levels"] = {}
        for panel in PANELS:
            snapshot.pop(panel, None)
    return snapshot


def _panels(now: datetime) -> dict[str, Any]:
    levels: dict[str, str] = {}
    out: dict[str, Any] = {}

    board = rounds_board(now=now)
    current = board.current
    out["round"] = None
    round_level = LEVEL_OK
    if current is not None:
        holders = current.holders
        trip = side_share_concern(
            code=current.code, side="UP", staked_u=holders.up_top_u, side_u=current.up_pool_u, pool_u=current.pool_u
        ) or side_share_concern(
            code=current.code,
            side="DOWN",
            staked_u=holders.down_top_u,
            side_u=current.down_pool_u,
            pool_u=current.pool_u,
        )
        round_level = LEVEL_RED if trip or current.code in board.overdue else LEVEL_OK
        out["round"] = {
            "code": current.code,
            "symbol": current.symbol,
            "status": current.status,
            "lock_at": _iso(current.lock_at),
            "settle_at": _iso(current.settle_at),
            "seconds_to_lock": _age(current.lock_at, now),
            "seconds_to_settle": _age(current.settle_at, now),
            "up_pool_u": current.up_pool_u,
            "down_pool_u": current.down_pool_u,
            "pool_u": current.pool_u,
            "bettors": holders.bettors,
            "up_top_u": holders.up_top_u,
            "down_top_u": holders.down_top_u,
            "top_u": holders.top_u,
            "unusual_betting": trip.text if trip else "",
        }
    levels["round"] = round_level

    tvl = tvl_get()
    queue = withdrawals_queue(
        backlog_before=withdrawal_backlog_cutoff(now), failed_since=now - WITHDRAWAL_FAILURE_WINDOW
    )
    out["tvl"] = {
        "locked_u": tvl.locked_u,
        "cash_u": tvl.cash_u,
        "pending_withdrawals_u": tvl.pending_withdrawals_u,
        "queue": {
            state: {"count": totals.count, "amount_u": totals.amount_u}
            for state, totals in (
                ("queued", queue.queued),
                ("processing", queue.processing),
                ("reconciliation", queue.reconciliation),
            )
        },
        "backlog": queue.backlog,
        "failed_last_hour": queue.failed,
    }
    levels["tvl"] = findings_level(
        withdrawal_backlog_findings(queue.backlog) + withdrawal_failure_findings(queue.failed)
    )

    alerts = alerts_open_board()
    out["alerts"] = [
        {
            "key": alert.key,
            "severity": alert.severity,
            "summary": alert.summary,
            "first_seen_at": _iso(alert.first_seen_at),
            "age_seconds": _age(now, alert.first_seen_at),
        }
        for alert in alerts
    ]
    levels["alerts"] = severity_level(min((alert.severity for alert in alerts), default=None))

    last = board.last_settlement
    out["settlement"] = {"overdue": board.overdue, "last": None}
    if last is not None:
        out["settlement"]["last"] = {
            "code": last.code,
            "result": last.result,
            "requested_result": last.requested_result,
            "decided": (
                f"official close ({last.close_source or 'oracle'})" if last.requested_result == "AUTO" else "by hand"
            ),
            "settled_by": last.settled_by,
            "reason": last.reason,
            "settled_at": _iso(last.settled_at),
            "seconds_after_settle_at": _age(last.settled_at, last.settle_at),
            "bets": last.bets_count,
            "paid_out_u": last.paid_out_u,
            "fee_u": last.fee_u,
        }
    levels["settlement"] = findings_level(settlement_overdue_findings(board.overdue))

    feed = feed_status(now=now)
    out["feed"] = {
        "symbols": [
            {
                "symbol": s.symbol,
                "newest": _iso(s.newest_tick_at) if s.newest_tick_at else "",
                "age_seconds": s.age_seconds,
                "target_seconds": s.target_seconds,
                "stale": s.stale,
            }
            for s in feed.symbols
        ],
        "sources": [  # the enabled fetched sources, judged by feed_status's thresholds (the alert rules' own)
            {"name": s.name, "up": s.up, "success_rate": s.success_rate, "last_error": s.last_error}
            for s in feed.fetched_sources_enabled
        ],
    }
    stale = bool(feed.stale_symbols)
    amber = any(s.colour != "green" for s in feed.fetched_sources_enabled)
    levels["feed"] = LEVEL_RED if stale else LEVEL_AMBER if amber else LEVEL_OK

    beats = heartbeats_all()
    beats.setdefault("beat", None)  # type: ignore[arg-type]  # the beat must have one: its absence is an alert
    pending = migrations_pending()
    out["heartbeats"] = {
        "processes": [
            {"name": name, "at": _iso(at), "age_seconds": _age(now, at)} for name, at in sorted(beats.items())
        ],
        "migrations_pending": pending,
    }
    beat_findings = [f for name, at in beats.items() for f in heartbeat_findings(_age(now, at), name=name)]
    levels["heartbeats"] = _worst(findings_level(beat_findings), LEVEL_RED if pending else LEVEL_OK)

    out["levels"] = levels
    return out


def dashboard_trouble(snapshot: dict[str, Any]) -> str | None:
    """Why the snapshot could not show the house (database down, maintenance), as a sentence, else None."""
    if not snapshot["database"]["ok"]:
        return (
            f"The database cannot be read ({snapshot['database']['error']}); nothing is shown. [database_unavailable]"
        )
    if snapshot["maintenance"] is not None:
        return (
            f"The house is in maintenance ({snapshot['maintenance']['reason'] or 'no reason given'}): a restore may be "
            "running, so only the switches are shown. [maintenance]"
        )
    return None


# --- Drawing it -----------------------------------------------------------------------------------

_BORDER = {LEVEL_OK: "green", LEVEL_AMBER: "yellow", LEVEL_RED: "red"}
_LABEL = {LEVEL_OK: "", LEVEL_AMBER: " [AMBER]", LEVEL_RED: " [RED]"}


def _et(iso: str | None) -> str:
    """'15:55:00 EST' for today, '2026-11-30 16:00:00 EST' for another day (always the zone named)."""
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone(market_timezone()).strftime("%Y-%m-%d %H:%M:%S %Z")


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _countdown(iso: str | None, now: datetime) -> str:
    if not iso:
        return ""
    seconds = (datetime.fromisoformat(iso) - now).total_seconds()
    return f"in {_span(seconds)}" if seconds > 0 else f"{_span(seconds)} ago"


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    return f"{_span((now - datetime.fromisoformat(iso)).total_seconds())} ago"


def _panel(body: RenderableType, title: str, level: str) -> Panel:
    return Panel(
        body,
        title=f"[b]{title}[/b]{_LABEL[level]}",
        title_align="left",
        border_style=_BORDER[level],
        box=box.ROUNDED,
    )


def _grid() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    return table


def _share(part_u: int, whole_u: int) -> float:
    return part_u / whole_u if whole_u else 0.0


def _round_panel(data: dict[str, Any] | None, level: str, now: datetime) -> Panel:
    if data is None:
        return _panel(Text("No round is open or locked."), "Round", level)
    grid = _grid()
    grid.add_row("round", f"{data['code']} {data['symbol']}  [b]{data['status']}[/b]")
    grid.add_row("lock", f"{_et(data['lock_at'])}  ({_countdown(data['lock_at'], now)})")
    grid.add_row("settle", f"{_et(data['settle_at'])}  ({_countdown(data['settle_at'], now)})")
    pool_u = data["pool_u"]
    for side, color in (("up", "green"), ("down", "red")):
        side_u = data[f"{side}_pool_u"]
        share = _share(side_u, pool_u)
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=20)
        bar.add_column()
        bar.add_row(Bar(size=1.0, begin=0.0, end=share, color=color), f"{format_usdc(side_u)}  {share:.1%}")
        grid.add_row(side.upper(), bar)
    grid.add_row("pool", format_usdc(pool_u))
    grid.add_row("bettors", f"{data['bettors']:,}")
    for side in ("up", "down"):
        top_u = data[f"{side}_top_u"]
        share = _share(top_u, data[f"{side}_pool_u"])
        grid.add_row(f"top {side.upper()} bettor", f"{share:.1%} of {side.upper()} ({format_usdc(top_u)})")
    if data["unusual_betting"]:
        grid.add_row("[red]breaker rule[/red]", f"[red]{data['unusual_betting']}[/red]")
    return _panel(grid, "Round", level)


def _tvl_panel(data: dict[str, Any], level: str) -> Panel:
    grid = _grid()
    grid.add_row("locked", format_usdc(data["locked_u"]))
    grid.add_row("total cash", format_usdc(data["cash_u"]))
    grid.add_row("pending withdrawals", format_usdc(data["pending_withdrawals_u"]))
    queue = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    queue.add_column("withdrawals")
    queue.add_column("count", justify="right")
    queue.add_column("amount", justify="right")
    for state, label in (
        ("queued", "queued"),
        ("processing", "processing"),
        ("reconciliation", "needs reconciliation"),
    ):
        row = data["queue"][state]
        queue.add_row(label, f"{row['count']:,}", format_usdc(row["amount_u"]))
    notes = []
    if data["backlog"]:
        notes.append(f"{data['backlog']} waiting past the backlog limit")
    if data["failed_last_hour"]:
        notes.append(f"{data['failed_last_hour']} failed in the last hour")
    parts: list[RenderableType] = [grid, queue]
    if notes:
        parts.append(Text("; ".join(notes)))
    return _panel(Group(*parts), "TVL and withdrawals", level)


def _switches_panel(rows: list[dict[str, Any]], level: str, now: datetime) -> Panel:
    grid = _grid()
    labels = {
        OpsSwitch.Name.EMERGENCY_STOP: ("emergency stop", "ON", "off"),
        OpsSwitch.Name.CIRCUIT_BREAKER: ("circuit breaker", "OPEN", "closed"),
        OpsSwitch.Name.MAINTENANCE: ("maintenance", "ON", "off"),
    }
    for row in rows:
        label, on, off = labels[OpsSwitch.Name(row["name"])]
        if row["active"]:
            who = f" by {row['changed_by']}" if row["changed_by"] else ""
            text = f"[b red]{on}[/b red]: {row['reason'] or 'no reason given'}  since {_et(row['changed_at'])}{who}"
        else:
            text = off
        grid.add_row(label, text)
    return _panel(grid, "Switches", level)


def _alerts_panel(rows: list[dict[str, Any]], level: str, now: datetime) -> Panel:
    counts = dict.fromkeys(("P0", "P1", "P2", "P3"), 0)
    for row in rows:
        counts[row["severity"]] = counts.get(row["severity"], 0) + 1
    summary = Text("  ".join(f"{severity}: {count}" for severity, count in counts.items()))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("alert", ratio=1)
    for row in rows[:ALERTS_SHOWN]:
        style = "red" if severity_level(row["severity"]) == LEVEL_RED else "yellow"
        table.add_row(
            f"[{style}]{row['severity']}[/{style}]",
            _ago(row["first_seen_at"], now).removesuffix(" ago"),
            row["summary"],
        )
    parts: list[RenderableType] = [summary, table]
    if len(rows) > ALERTS_SHOWN:
        parts.append(Text(f"… and {len(rows) - ALERTS_SHOWN} more"))
    body: RenderableType = Group(*parts) if rows else Text("No open alerts.")
    return _panel(body, "Open alerts", level)


def _settlement_panel(data: dict[str, Any], level: str, now: datetime) -> Panel:
    grid = _grid()
    last = data["last"]
    if last is None:
        grid.add_row("last", "no round settled yet")
    else:
        grid.add_row("last", f"{last['code']}  [b]{last['result']}[/b]  ({last['bets']:,} bets)")
        decided = last["decided"] if last["requested_result"] == "AUTO" else f"by hand ({last['requested_result']})"
        grid.add_row("decided", f"{decided}, by {last['settled_by']}")
        if last["reason"]:
            grid.add_row("reason", last["reason"])
        after = last["seconds_after_settle_at"]
        grid.add_row(
            "settled",
            f"{_et(last['settled_at'])} ({_ago(last['settled_at'], now)}), "
            f"{_span(after) if after is not None else '?'} after settle_at",
        )
        grid.add_row("paid out", f"{format_usdc(last['paid_out_u'])}, fee {format_usdc(last['fee_u'])}")
    if data["overdue"]:
        grid.add_row(
            "[red]overdue[/red]", f"[red]{', '.join(data['overdue'])} still LOCKED past settle_at + grace[/red]"
        )
    return _panel(grid, "Settlement", level)


def _feed_panel(data: dict[str, Any], level: str) -> Panel:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("symbol")
    table.add_column("newest")
    table.add_column("age", justify="right")
    table.add_column("target", justify="right")
    for row in data["symbols"]:
        age = _span(row["age_seconds"]) if row["age_seconds"] is not None else "-"
        target = _span(row["target_seconds"]) if row["target_seconds"] is not None else "-"
        table.add_row(row["symbol"], _et(row["newest"]) if row["newest"] else "none", age, target)
    parts: list[RenderableType] = [table]
    if data["sources"]:
        sources = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("source", "state", "success", "last error"):
            sources.add_column(column)
        for row in data["sources"]:
            rate = f"{row['success_rate']:.1%}" if row["success_rate"] is not None else "-"
            sources.add_row(row["name"], "up" if row["up"] else "[red]DOWN[/red]", rate, row["last_error"] or "")
        parts.append(sources)
    else:
        parts.append(Text("No price source enabled: closes are entered by operators."))
    return _panel(Group(*parts), "Price feed", level)


def _heartbeats_panel(data: dict[str, Any], level: str) -> Panel:
    grid = _grid()
    for row in data["processes"]:
        findings = heartbeat_findings(row["age_seconds"], name=row["name"])
        age = f"{_span(row['age_seconds'])} ago" if row["age_seconds"] is not None else "never"
        grid.add_row(row["name"], f"[red]{age} (stale)[/red]" if findings else age)
    pending = data["migrations_pending"]
    grid.add_row("migrations", f"[red]{len(pending)} pending: {', '.join(pending)}[/red]" if pending else "all applied")
    return _panel(grid, "Heartbeats and migrations", level)


def dashboard_render(snapshot: dict[str, Any], *, now: datetime | None = None, live: bool = False) -> RenderableType:
    """The snapshot as rich panels (`live`: the screen that redraws says how to leave it)."""
    now = now or datetime.fromisoformat(snapshot["generated_at"])
    local_now = now.astimezone(market_timezone())
    header = Text.assemble(
        ("Up/Down House", "bold"),
        f"  {local_now:%Y-%m-%d %H:%M:%S %Z} ({snapshot['timezone']})  ·  database {snapshot['database']['vendor']}",
        "  ·  q or Ctrl-C quits" if live else "",
    )
    levels = snapshot["levels"]
    switches = snapshot.get("switches")
    if not snapshot["database"]["ok"]:
        body: RenderableType = _panel(
            Text(f"The database cannot be read: {snapshot['database']['error']}\nRetrying at every refresh."),
            "Database unreachable",
            LEVEL_RED,
        )
        return Group(header, body)
    if snapshot["maintenance"] is not None:
        notice = _panel(
            Text(
                f"Maintenance mode is ON since {_et(snapshot['maintenance']['since'])}: "
                f"{snapshot['maintenance']['reason'] or 'no reason given'}.\n"
                "A restore may be running: the other panels are not read until maintenance is off."
            ),
            "Maintenance",
            LEVEL_AMBER,
        )
        return Group(header, notice, _switches_panel(switches or [], levels.get("switches", LEVEL_AMBER), now))
    left = Group(
        _round_panel(snapshot["round"], levels["round"], now),
        _tvl_panel(snapshot["tvl"], levels["tvl"]),
        _settlement_panel(snapshot["settlement"], levels["settlement"], now),
    )
    right = Group(
        _switches_panel(snapshot["switches"], levels["switches"], now),
        _alerts_panel(snapshot["alerts"], levels["alerts"], now),
        _feed_panel(snapshot["feed"], levels["feed"]),
        _heartbeats_panel(snapshot["heartbeats"], levels["heartbeats"]),
    )
    columns = Table.grid(expand=True, padding=(0, 1))
    columns.add_column(ratio=1)
    columns.add_column(ratio=1)
    columns.add_row(left, right)
    return Group(header, columns)
