"""The ops dashboard on the admin index: the current round, TVL, switches, alerts and 30-day charts.

The numbers come from ops.dashboard / ops.reports; the charts are drawn in the browser by Chart.js, served
from the project's own static files (ops/static/ops/vendor/chartjs, no CDN) with ops/static/ops/dashboard.js.
"""

import datetime as dt

from django import template
from django.utils import timezone

from approvals.selectors import approvals_pending
from common.money import format_usdc
from common.times import format_market_time, market_zone
from marketdata.selectors import feed_status
from ops.dashboard import dashboard_numbers
from ops.reports import house_pnl_by_day, tvl_by_day
from ops.rules import kpi_readings
from ops.selectors import alerts_open, switch_get

register = template.Library()

CHARTJS = "ops/vendor/chartjs/chart.umd.min.js"  # Chart.js 4.6.1 (README.md beside it)
CHART_DAYS = 30


def _time_to_lock(lock_at: dt.datetime, now: dt.datetime) -> str:
    seconds = int((lock_at - now).total_seconds())
    if seconds <= 0:
        return "lock time passed"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _charts(*, today: dt.date) -> dict:
    """The 30-day series, in micro-USDC (the browser divides by 10^6 for the axis; labels are ET days)."""
    start = today - dt.timedelta(days=CHART_DAYS - 1)
    pnl = house_pnl_by_day(start=start, end=today)
    tvl_days = tvl_by_day(start=start, end=today)
    return {
        "days": [row.day.isoformat() for row in pnl],
        "volume_u": [row.volume_u for row in pnl],
        "fees_u": [row.fees_u for row in pnl],
        "tvl_days": [day.isoformat() for day, _ in tvl_days],
        "tvl_u": [value for _, value in tvl_days],
    }


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "no tick yet"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s ago" if minutes else f"{secs} s ago"


def _feed(now: dt.datetime) -> dict | None:
    """The price feed by marketdata.selectors.feed_status (the thresholds the alert rules use); None while
    no source is fetched (closes are entered by operators)."""
    feed = feed_status(now=now)
    if not feed.fetched_sources_enabled:
        return None
    stale = {s.symbol for s in feed.stale_symbols}
    return {
        "symbols": [
            {
                "symbol": s.symbol,
                "age": _age_text(s.age_seconds),
                "target": s.target_seconds,
                "stale": s.symbol in stale,
            }
            for s in feed.symbols
        ],
        "sources": [
            {
                "name": s.name,
                "colour": s.colour,
                "state": "up" if s.up else "DOWN",
                "rate": "-" if s.success_rate is None else f"{s.success_rate:.0%}",
                "error": s.last_error,
            }
            for s in feed.fetched_sources_enabled
        ],
    }


@register.inclusion_tag("ops/dashboard.html", takes_context=True)
def ops_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"show": False}
    numbers = dashboard_numbers()
    now = timezone.now()
    today = now.astimezone(market_zone()).date()
    current = numbers["round"]
    tvl = numbers["tvl"]
    round_info = None
    if current is not None:
        round_info = {
            "code": current.code,
            "status": current.status,
            "result": current.result,
            "lock_at": format_market_time(current.lock_at),
            "lock_at_iso": current.lock_at.isoformat(),
            "settle_at": format_market_time(current.settle_at),
            "time_to_lock": _time_to_lock(current.lock_at, now) if current.status == "OPEN" else None,
            "up_pool": format_usdc(current.up_pool_u),
            "down_pool": format_usdc(current.down_pool_u),
            "pool_total": format_usdc(current.up_pool_u + current.down_pool_u),
        }
    return {
        "show": True,
        "chartjs": CHARTJS,
        "round": round_info,
        "tvl": {
            "total": format_usdc(tvl.cash_u + tvl.locked_u + tvl.pending_withdrawals_u),
            "locked": format_usdc(tvl.locked_u),
            "cash": format_usdc(tvl.cash_u),
            "pending": format_usdc(tvl.pending_withdrawals_u),
        },
        "emergency_stop": switch_get(name="emergency_stop"),
        "circuit_breaker": switch_get(name="circuit_breaker"),
        "maintenance": switch_get(name="maintenance"),
        "alerts": list(alerts_open()[:10]),
        "alerts_count": numbers["alerts_open"],
        "feed": _feed(now),
        "kpis": kpi_readings(now),
        "approvals": [
            {
                "request": req,
                "payload": ", ".join(f"{k} {v}" for k, v in sorted(req.payload.items()) if k != "destination"),
                "expires": format_market_time(req.expires_at),
            }
            for req in approvals_pending()[:20]
        ],
        "now": format_market_time(now),
        "chart_data": {
            **_charts(today=today),
            "round": (
                {"code": current.code, "up_u": current.up_pool_u, "down_u": current.down_pool_u} if current else None
            ),
        },
    }
