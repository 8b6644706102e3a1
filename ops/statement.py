"""A bettor's statement: opening and closing balance, every cash line in words, a summary per round.

A report over the rooms' selectors (ledger lines, bets, deposits and withdrawals, round results), so
it lives in ops like the other reports. The API (`/api/v1/me/statement`), the admin (a user's
statement page) and the `statement` command all call `statement_get` and `statement_csv`.
Periods are America/New_York days: `start` inclusive, `end` exclusive.
"""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from betting.selectors import bets_round_and_side
from common.errors import InvalidInput
from common.money import usdc
from common.types import User
from ledger.selectors import user_cash_entries_between
from rounds.selectors import round_results
from withdrawals.selectors import statement_references

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class StatementLine:
    id: int
    ts: datetime
    amount_u: int
    balance_after_u: int
    ref_type: str
    ref_id: str
    batch_id: int
    description: str
    round: str | None = None


@dataclass
class RoundSummary:
    round: str
    result: str | None = None
    staked_u: int = 0
    returned_u: int = 0  # payouts and refunds (stakes back included)

    @property
    def net_u(self) -> int:
        return self.returned_u - self.staked_u


@dataclass
class Statement:
    user: User
    start: datetime | None
    end: datetime
    opening_balance_u: int
    lines: list[StatementLine] = field(default_factory=list)
    rounds: list[RoundSummary] = field(default_factory=list)

    @property
    def closing_balance_u(self) -> int:
        return self.opening_balance_u + sum(line.amount_u for line in self.lines)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=NEW_YORK)


def period_parse(*, start: str | None = None, end: str | None = None, month: str | None = None) -> tuple[Any, Any]:
    """(start, end) datetimes from YYYY-MM-DD days (`end` inclusive) or a YYYY-MM month; `invalid_period`."""

    def day(text: str, what: str) -> date:
        try:
            return date.fromisoformat(str(text).strip())
        except ValueError:
            raise InvalidInput(
                f"{what} must be a day YYYY-MM-DD, got {str(text)[:40]!r}.", code="invalid_period"
            ) from None

    if month:
        try:
            first = date.fromisoformat(f"{str(month).strip()}-01")
            after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        except ValueError:  # not YYYY-MM, or 9999-12 (no month after it)
            raise InvalidInput(f"The month must be YYYY-MM, got {str(month)[:40]!r}.", code="invalid_period") from None
        return day_start(first), day_start(after)
    begin = day_start(day(start, "from")) if start else None
    try:
        finish = day_start(day(end, "to") + timedelta(days=1)) if end else timezone.now()
    except OverflowError:  # to=9999-12-31: no day after it
        raise InvalidInput("`to` must be before 9999-12-31.", code="invalid_period") from None
    if begin is not None and begin >= finish:
        raise InvalidInput("`from` must be on or before `to`.", code="invalid_period")
    return begin, finish


def _describe(entry: Any, refs: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
    """(the line in words, its round code if it belongs to one)."""
    kind, ref = entry.ref_type, entry.ref_id
    amount = f"{usdc(abs(entry.amount_u))} USDC"
    if kind == "bet":
        code, side = refs["bets"].get(ref, ("?", "?"))
        return f"Bet {ref} on round {code} {side}: {amount} staked", code
    if kind == "settlement":
        result = refs["rounds"].get(ref)
        if result == "VOID":
            return f"Refund of round {ref} (VOID): {amount}", ref
        return f"Payout of round {ref} ({result}): {amount}", ref
    if kind == "deposit":
        deposit = refs["other"].get(f"deposit:{ref}", {})
        return f"Deposit {deposit.get('tx_id', ref)}: {amount}", None
    if kind == "withdrawal":
        withdrawal = refs["other"].get(f"withdrawal:{ref}", {})
        status = withdrawal.get("status", "?")
        if entry.amount_u < 0:
            return f"Withdrawal {ref} to {withdrawal.get('destination', '?')} ({status}): {amount}", None
        return f"Withdrawal {ref} returned ({status}): {amount}", None
    if kind == "manual_adjustment":
        verb = "credit" if entry.amount_u > 0 else "debit"
        return f"Manual {verb} by staff: {amount} — {entry.batch.memo}", None
    return f"{kind} {ref}: {amount}", None


def statement_get(*, user: User, start: datetime | None, end: datetime) -> Statement:
    """The statement of `user` for [start, end): a handful of queries whatever the number of lines."""
    opening_u, entries = user_cash_entries_between(user_id=user.pk, start=start, end=end)
    by_type: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_type[entry.ref_type].append(entry.ref_id)
    bets = bets_round_and_side(bet_ids=by_type["bet"])
    codes = sorted({code for code, _ in bets.values()} | set(by_type["settlement"]))
    refs: dict[str, dict[str, Any]] = {
        "bets": bets,
        "rounds": round_results(codes=codes),
        "other": statement_references(deposit_ids=by_type["deposit"], withdrawal_ids=by_type["withdrawal"]),
    }
    statement = Statement(user=user, start=start, end=end, opening_balance_u=opening_u)
    summaries: dict[str, RoundSummary] = {}
    balance_u = opening_u
    for entry in entries:
        balance_u += entry.amount_u
        description, code = _describe(entry, refs)
        statement.lines.append(
            StatementLine(
                id=entry.pk,
                ts=entry.ts,
                amount_u=entry.amount_u,
                balance_after_u=balance_u,
                ref_type=entry.ref_type,
                ref_id=entry.ref_id,
                batch_id=entry.batch_id,
                description=description,
                round=code,
            )
        )
        if code is not None:
            summary = summaries.setdefault(code, RoundSummary(round=code, result=refs["rounds"].get(code)))
            if entry.ref_type == "bet":
                summary.staked_u -= entry.amount_u
            else:
                summary.returned_u += entry.amount_u
    statement.rounds = [summaries[code] for code in sorted(summaries)]
    return statement


def _ny(moment: datetime | None) -> str:
    return "" if moment is None else timezone.localtime(moment, NEW_YORK).strftime("%Y-%m-%d %H:%M:%S %Z")


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: the lines (times America/New_York), then the opening and closing balance rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time (America/New_York)", "description", "amount_u", "amount_usdc", "balance_u", "ref"])
    writer.writerow([_ny(statement.start), "Opening balance", "", "", statement.opening_balance_u, ""])
    for line in statement.lines:
        ref = f"{line.ref_type}:{line.ref_id}"
        writer.writerow([_ny(line.ts), line.description, line.amount_u, usdc(line.amount_u), line.balance_after_u, ref])
    writer.writerow([_ny(statement.end), "Closing balance", "", "", statement.closing_balance_u, ""])
    return out.getvalue()


def statement_text(statement: Statement) -> str:
    """The statement for a terminal (the `statement` command)."""
    rows = [
        f"Statement of {statement.user.email}, {_ny(statement.start) or 'the first line'} to {_ny(statement.end)}",
        f"Opening balance: {usdc(statement.opening_balance_u)} USDC ({statement.opening_balance_u} u)",
    ]
    rows += [
        f"  {_ny(line.ts)}  {line.amount_u:>+16} u  {line.balance_after_u:>16} u  {line.description}"
        for line in statement.lines
    ]
    rows.append(f"Closing balance: {usdc(statement.closing_balance_u)} USDC ({statement.closing_balance_u} u)")
    if statement.rounds:
        rows.append("Rounds:")
        rows += [
            f"  {r.round} {r.result or 'open'}: staked {usdc(r.staked_u)}, won {usdc(r.returned_u)}, "
            f"net {usdc(r.net_u)} USDC"
            for r in statement.rounds
        ]
    return "\n".join(rows)
