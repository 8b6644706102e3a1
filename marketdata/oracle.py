"""The price oracle interface that AUTO settlement asks for official closes.

`PriceOracle` is the seam: this issue's implementation reads the OfficialClose
table (filled by operators in the admin or with `set_close`); the market-data
issue plugs real price sources behind the same protocol and names the class in
the PRICE_ORACLE setting.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


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
        from marketdata.models import OfficialClose

        row = OfficialClose.objects.filter(symbol=symbol.upper(), date=day).first()
        if row is None:
            return None
        return ClosePrice(symbol=row.symbol, date=row.date, price=row.price, source=row.source)


def price_oracle() -> PriceOracle:
    return import_string(settings.PRICE_ORACLE)()
