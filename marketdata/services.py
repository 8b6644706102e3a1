"""Writes of market data: official closes (operators, or a price source) and calendar overrides.

A person entering either needs the model's change permission (the admin asks the same); a
caller without a Django user (the shell without --actor, a price source) is not a person.
"""

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record
from common.errors import ReasonRequired, permission_require
from common.types import User
from marketdata.exceptions import InvalidDate, InvalidPrice, InvalidSymbol
from marketdata.models import CalendarOverride, OfficialClose

_SYMBOL = re.compile(r"^[A-Z0-9.^]{1,16}$")
_MAX_PRICE = Decimal("999999999999.999999")


def price_parse(value: Any) -> Decimal:
    """A close price: a positive decimal with at most 6 places (as stored)."""
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidPrice(f"Price must be a decimal number, got {value!r}.") from None
    if not price.is_finite() or price <= 0:
        raise InvalidPrice(f"Price must be greater than zero, got {value!r}.")
    exponent = price.as_tuple().exponent  # an int for every finite decimal ("n"/"N"/"F" are NaN/Inf)
    if not isinstance(exponent, int) or exponent < -6:
        raise InvalidPrice(f"Price has more than 6 decimal places: {value!r}.")
    if price > _MAX_PRICE:
        raise InvalidPrice(f"Price {value!r} is too large.")
    return price


def symbol_parse(value: Any) -> str:
    symbol = str(value or "").strip().upper()
    if not _SYMBOL.match(symbol):
        raise InvalidSymbol(f"Symbol must be 1-16 letters or digits, got {value!r}.")
    return symbol


def date_parse(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for pattern in (r"^\d{4}-\d{2}-\d{2}$", r"^\d{8}$"):
        if re.match(pattern, text):
            digits = text.replace("-", "")
            try:
                return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            except ValueError:
                break
    raise InvalidDate(f"Date must be YYYY-MM-DD (or YYYYMMDD), got {value!r}.")


def official_close_set(
    *,
    symbol: str,
    day: Any,
    price: Any,
    source: str = "manual",
    acting_user: User | None = None,
    channel: str = "cli",
    reason: str = "",
) -> OfficialClose:
    """Record (or correct) the official close of `symbol` on `day`. Audited with the old value."""
    if acting_user is not None:
        permission_require(
            acting_user, "marketdata.change_officialclose", detail="Entering an official close needs that permission."
        )
    symbol, day, price = symbol_parse(symbol), date_parse(day), price_parse(price)
    with transaction.atomic():
        existing = OfficialClose.objects.select_for_update().filter(symbol=symbol, date=day).first()
        before = {"price": str(existing.price), "source": existing.source} if existing else None
        if existing is None:
            close = OfficialClose.objects.create(
                symbol=symbol,
                date=day,
                price=price,
                source=source,
                created_by=acting_user if getattr(acting_user, "pk", None) else None,
            )
        else:
            close = existing
            close.price, close.source = price, source
            close.save(update_fields=["price", "source", "updated_at"])
        audit_record(
            action=AuditAction.MARKETDATA_SET_CLOSE,
            source=channel,
            actor=acting_user,
            object_type="official_close",
            object_id=f"{symbol}:{day.isoformat()}",
            reason=reason,
            before=before,
            after={"price": str(price), "source": source},
        )
    return close


def calendar_override_set(
    *,
    day: Any,
    kind: str,
    reason: str,
    close_time: time | None = None,
    acting_user: User | None = None,
    channel: str = "admin",
) -> CalendarOverride:
    """Mark an unscheduled closure, an extra early close, or a holiday the market opened after all."""
    if acting_user is not None:
        permission_require(
            acting_user,
            "marketdata.change_calendaroverride",
            detail="Overriding the trading calendar needs that permission.",
        )
    day = date_parse(day)
    if kind not in CalendarOverride.Kind.values:
        raise InvalidDate(f"Kind must be one of {', '.join(CalendarOverride.Kind.values)}.", code="invalid_kind")
    if not (reason or "").strip():
        raise ReasonRequired("A calendar override needs a reason.")
    with transaction.atomic():
        existing = CalendarOverride.objects.select_for_update().filter(date=day).first()
        before = {"kind": existing.kind, "close_time": str(existing.close_time or "")} if existing else None
        override, _ = CalendarOverride.objects.update_or_create(
            date=day,
            defaults={
                "kind": kind,
                "close_time": close_time,
                "reason": reason,
                "created_by": acting_user if getattr(acting_user, "pk", None) else None,
            },
        )
        audit_record(
            action=AuditAction.MARKETDATA_CALENDAR_OVERRIDE,
            source=channel,
            actor=acting_user,
            object_type="calendar_override",
            object_id=day.isoformat(),
            reason=reason,
            before=before,
            after={"kind": kind, "close_time": str(close_time or "")},
        )
    return override
