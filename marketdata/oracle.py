"""The price oracle interface that AUTO settlement asks for official closes.

`PriceOracle` is the seam, named by the PRICE_ORACLE setting. Both oracles read the
OfficialClose table first (what operators entered with `set_close` or the admin, or what a
quorum accepted before): a close once known never changes under a settlement.
`close_quotes` is where the close comes from when the table has none:
`OfficialCloseTableOracle` asks nobody (None: operators only); `QuorumOracle` (the default)
asks every enabled price source at once, and marketdata.services.official_close_resolve
judges the answers by quorum and records them as evidence.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.models import OfficialClose, PriceSource
from marketdata.sources import Quote, SourceSpec, quotes_fetch_all

FETCHED_KINDS = (PriceSource.Kind.HTTP_JSON.value, PriceSource.Kind.CSV.value)


@dataclass(frozen=True)
class ClosePrice:
    symbol: str
    date: date
    price: Decimal
    source: str


class PriceOracle(Protocol):
    def official_close(self, *, symbol: str, day: date) -> ClosePrice | None:
        """The official close of `symbol` on `day`, or None when it is not known (yet)."""

    def close_quotes(self, *, symbol: str, day: date) -> list[Quote] | None:
        """Every enabled source's answer for that close (None: this oracle asks no source)."""


class OfficialCloseTableOracle:
    """Reads the closes operators entered (admin, `set_close`) or sources ingested."""

    def official_close(self, *, symbol: str, day: date) -> ClosePrice | None:
        row = OfficialClose.objects.filter(symbol=symbol.upper(), date=day).first()
        if row is None:
            return None
        return ClosePrice(symbol=row.symbol, date=row.date, price=row.price, source=row.source)

    def close_quotes(self, *, symbol: str, day: date) -> list[Quote] | None:
        return None


def source_specs(*, enabled_only: bool = True, kinds: tuple[str, ...] = FETCHED_KINDS) -> list[SourceSpec]:
    """Snapshots of the price sources (for fetching in threads), by name."""
    rows = PriceSource.objects.filter(kind__in=kinds).order_by("name")
    if enabled_only:
        rows = rows.filter(enabled=True)
    return [
        SourceSpec(name=r.name, kind=r.kind, timeout_ms=r.timeout_ms, weight=r.weight, config=dict(r.config or {}))
        for r in rows
    ]


class QuorumOracle(OfficialCloseTableOracle):
    """The table first; else every enabled HTTP/CSV source, asked at once (each with its own timeout)."""

    def close_quotes(self, *, symbol: str, day: date) -> list[Quote] | None:
        specs = source_specs()
        if not specs:
            return None  # no source enabled: operators only, as before there were sources
        return quotes_fetch_all(specs, symbol=symbol, day=day, retries=settings.PRICE_FETCH_RETRIES)


def price_oracle() -> PriceOracle:
    return import_string(settings.PRICE_ORACLE)()
