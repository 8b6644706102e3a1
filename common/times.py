"""Times operators read: America/New_York (the market's zone, settings.MARKET_TIMEZONE) with the zone named."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings


def market_zone() -> ZoneInfo:
    return ZoneInfo(settings.MARKET_TIMEZONE)


def format_market_time(moment: dt.datetime | None, *, seconds: bool = True) -> str:
    """2026-12-01 20:59:59 UTC -> '2026-12-01 15:59:59 EST' (EDT in summer); '-' for None."""
    if moment is None:
        return "-"
    local = moment.astimezone(market_zone())
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
