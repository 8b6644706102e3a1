"""The price oracle interface that AUTO settlement asks for official closes.

`PriceOracle` is the seam: `OfficialCloseTableOracle` reads the OfficialClose table
(filled by operators in the admin or with `set_close`); a real price source plugs in
behind the same protocol, named by the PRICE_ORACLE setting.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.models import OfficialClose


@dataclass(frozen=True)
class ClosePrice:
    symbol: str
    date: date
    price: Decimal
    source: str


class PriceOracle(Protocol):
    def official_close(self, *, symbol: str, day: date) -> ClosePrice | None:
        """The official close of `symbol` on `day`, or None when it is not known (yet)."""


class OfficialCloseTableOracle:
    """Reads the closes operators entered (admin, `set_close`) or sources ingested."""

    def official_close(self, *, symbol: str, day: date) -> ClosePrice | None:
        row = OfficialClose.objects.filter(symbol=symbol.upper(), date=day).first()
        if row is None:
            return None
        return ClosePrice(symbol=row.symbol, date=row.date, price=row.price, source=row.source)


def price_oracle() -> PriceOracle:
    return import_string(settings.PRICE_ORACLE)()
