import datetime as dt
from zoneinfo import ZoneInfo

from django import template
from django.utils import timezone

from approvals.selectors import approvals_pending
from common.money import usdc
from ops.charts import bar_chart
from ops.dashboard import dashboard_numbers
from ops.reports import house_pnl_by_day, tvl_by_day
from ops.rules import kpi_readings
from ops.selectors import alerts_open, switch_get

register = template.Library()
_NEW_YORK = ZoneInfo("America/New_York")


@register.inclusion_tag("ops/dashboard.html", takes_context=True)
def ops_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"show": False}
    numbers = dashboard_numbers()
    today = timezone.localdate()
    start = today - dt.timedelta(days=29)
    pnl = house_pnl_by_day(start=start, end=today)
    tvl_days = tvl_by_day(start=start, end=today)
    current = numbers["round"]
    now = timezone.now()
    lock_in = None
    if current is not None and current.status == "OPEN" and current.lock_at > now:
        seconds = int((current.lock_at - now).total_seconds())
        lock_in = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    tvl = numbers["tvl"]
    approvals = [
        {
            "request": req,
            "payload": ", ".join(f"{k} {v}" for k, v in sorted(req.payload.items()) if k != "destination"),
            "expires": timezone.localtime(req.expires_at, _NEW_YORK).strftime("%Y-%m-%d %H:%M %Z"),
        }
        for req in approvals_pending()[:20]
    ]
    return {
        "kpis": kpi_readings(now),
        "approvals": approvals,
        "show": True,
        "round": current,
        "lock_in": lock_in,
        "pool_total": usdc(current.up_pool_u + current.down_pool_u) if current else "0.00",
        "up_pool": usdc(current.up_pool_u) if current else "0.00",
        "down_pool": usdc(current.down_pool_u) if current else "0.00",
        "tvl": {
            "locked": usdc(tvl.locked_u),
            "cash": usdc(tvl.cash_u),
            "pending": usdc(tvl.pending_withdrawals_u),
        },
        "emergency_stop": switch_get(name="emergency_stop"),
        "circuit_breaker": switch_get(name="circuit_breaker"),
        "alerts": list(alerts_open()[:10]),
        "volume_chart": bar_chart([(r.day.isoformat(), r.volume_u) for r in pnl], title="Daily volume (30 days)"),
        "fees_chart": bar_chart([(r.day.isoformat(), r.fees_u) for r in pnl], title="Fees (30 days)"),
        "tvl_chart": bar_chart([(d.isoformat(), v) for d, v in tvl_days], title="TVL at end of day (30 days)"),
    }
