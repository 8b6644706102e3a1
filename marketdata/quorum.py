"""The quorum rule for an official close: pure, no database, no network.

A quote counts when it parsed, is fresh (stamped at or after the day's close, 13:00 ET on an
early close, at most `allowance` after it, not in the future) and belongs to the largest group
of quotes within `max_deviation_bps` of one another. The close is accepted when that group has
at least `quorum` sources; its price is the group's weighted median (a price a source gave).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from marketdata.sources import Quote

FUTURE_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class Verdict:
    quote: Quote
    effective_ts: datetime | None
    accepted: bool
    reason: str  # "" when accepted
    detail: str


@dataclass(frozen=True)
class Decision:
    price: Decimal | None
    verdicts: list[Verdict]
    reason: str  # why there is no price ("" when accepted), a sentence for the alert

    @property
    def accepted(self) -> bool:
        return self.price is not None


def _freshness(quote: Quote, *, close_at: datetime, now: datetime, allowance: timedelta) -> tuple[datetime, str, str]:
    assert quote.ts is not None
    ts = quote.ts
    if quote.date_only:
        if ts.date() != close_at.date():
            return ts, "stale", f"dated {ts.date()}, not the day asked ({close_at.date()})"
        ts = close_at  # an end-of-day vendor's date means that day's close
    if ts > now + FUTURE_SKEW:
        return ts, "future_timestamp", f"stamped {ts.isoformat()}, in the future"
    if ts < close_at:
        return ts, "stale", f"stamped {ts.isoformat()}, before the close at {close_at.isoformat()}"
    if ts > close_at + allowance:
        return ts, "late", f"stamped {ts.isoformat()}, more than {allowance} after the close"
    return ts, "", ""


def _within(a: Decimal, b: Decimal, max_deviation_bps: int) -> bool:
    return abs(a - b) * 10000 <= max_deviation_bps * b


def _weighted_median(quotes: list[Quote]) -> Decimal:
    ordered = sorted(quotes, key=lambda q: (q.price, q.source))
    total = sum(max(q.weight, 1) for q in ordered)
    running = 0
    for quote in ordered:
        running += max(quote.weight, 1)
        if running * 2 >= total:
            assert quote.price is not None
            return quote.price
    raise AssertionError("unreachable: a non-empty group has a median")


def quorum_decide(
    quotes: list[Quote],
    *,
    close_at: datetime,
    now: datetime,
    quorum: int,
    max_deviation_bps: int,
    allowance: timedelta,
) -> Decision:
    fresh: list[tuple[Quote, datetime]] = []
    verdicts: dict[str, Verdict] = {}
    for quote in quotes:
        if not quote.ok:
            verdicts[quote.source] = Verdict(quote, quote.ts, False, quote.reason, quote.detail)
            continue
        ts, reason, detail = _freshness(quote, close_at=close_at, now=now, allowance=allowance)
        if reason:
            verdicts[quote.source] = Verdict(quote, ts, False, reason, detail)
        else:
            fresh.append((quote, ts))
    best: list[Quote] = []
    for center, _ in fresh:
        assert center.price is not None
        group = [q for q, _ in fresh if q.price is not None and _within(q.price, center.price, max_deviation_bps)]
        if (len(group), sum(q.weight for q in group)) > (len(best), sum(q.weight for q in best)):
            best = group
    ts_of = {q.source: ts for q, ts in fresh}
    if len(best) >= quorum:
        price = _weighted_median(best)
        members = {q.source for q in best}
        for quote, ts in fresh:
            if quote.source in members:
                verdicts[quote.source] = Verdict(quote, ts, True, "", "")
            else:
                verdicts[quote.source] = Verdict(
                    quote, ts, False, "deviation", f"{quote.price} is more than {max_deviation_bps} bps from {price}"
                )
        return Decision(price=price, verdicts=[verdicts[q.source] for q in quotes], reason="")
    for quote, _ in fresh:
        verdicts[quote.source] = Verdict(
            quote, ts_of[quote.source], False, "no_quorum", f"only {len(best)} of {quorum} needed agree"
        )
    if not quotes:
        reason = "no enabled price source answers for closes"
    elif not fresh:
        reason = "no usable quote: " + "; ".join(f"{v.quote.source} {v.reason} ({v.detail})" for v in verdicts.values())
    elif len(fresh) < quorum:
        reason = (
            f"too few usable quotes: {len(fresh)} of {quorum} needed ("
            + ", ".join(f"{v.quote.source} {v.reason or v.quote.price}" for v in verdicts.values())
            + ")"
        )
    else:
        reason = f"sources disagree by more than {max_deviation_bps} bps: " + ", ".join(
            f"{q.source} {q.price}" for q, _ in fresh
        )
    return Decision(price=None, verdicts=[verdicts[q.source] for q in quotes], reason=reason)
