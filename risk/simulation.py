"""Rehearsal: play whole trading days with synthetic bettors through the real services (`simulate`).

Each day: open the round (rounds.services.round_open), deposits (withdrawals' deposit_credit), bets
through betting.services.bet_place with a mix of sizes and sides, a late burst before lock, retries of
the same Idempotency-Key and some bad requests, a few withdrawals (withdrawal_request), the lock
(round_lock), a synthetic official close recorded through market data's service
(`synthetic_close_record`, the one place a price source will plug in), and AUTO settlement through
the real oracle path (round_settle). Days in the past are played on a travelled clock (time-machine:
this process's clock only), so twenty days take seconds.

Deterministic: every choice comes from one random.Random(seed), in a fixed order; the day table shows
only what those choices decide (wall times are printed apart). It touches only synthetic bettors
(`SYNTHETIC_DOMAIN`), never another user's money, and skips a day whose round already exists.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import time_machine
from django.conf import settings

from betting.selectors import user_get_by_email
from betting.services import bet_place, bet_request_digest, user_create
from common.errors import ApplicationError, NotFound
from common.types import User
from ledger.selectors import HOUSE_ACCOUNT, account_code_round_pool, entries_sum_u, ledger_audit, user_balance_u
from marketdata.selectors import market_close_at, market_timezone, official_close_get, trading_day_previous
from marketdata.services import official_close_set
from rounds.models import Round
from rounds.services import round_lock, round_open, round_settle
from withdrawals.services import deposit_credit, simulated_wallet_address, withdrawal_request

SYNTHETIC_DOMAIN = "simulate.invalid"  # .invalid can never be a real address (RFC 2606)
SYNTHETIC_SOURCE = "synthetic"
USDC = 1_000_000
STAKE_SIZES_USDC = [1, 2, 5, 10, 20, 50, 100, 250]
STAKE_WEIGHTS = [20, 18, 18, 15, 12, 9, 6, 2]
FIRST_PRICE = Decimal("20000.00")


def synthetic_email(index: int) -> str:
    return f"sim-{index:05d}@{SYNTHETIC_DOMAIN}"


def is_synthetic(user: User) -> bool:
    return user.email.lower().endswith("@" + SYNTHETIC_DOMAIN)


def synthetic_close_record(*, day: date, price: Decimal) -> Decimal:
    """Record the synthetic official close of `day` where AUTO settlement reads closes; returns the close used.

    The one seam for the price sources: today the oracle reads recorded official closes, so the close
    goes through marketdata's service with source "synthetic". A close already recorded by anyone
    else is never overwritten: that one is used.
    """
    existing = official_close_get(symbol=settings.MARKET_SYMBOL, day=day)
    if existing is not None:
        return existing.price
    official_close_set(
        symbol=settings.MARKET_SYMBOL,
        day=day,
        price=price,
        source=SYNTHETIC_SOURCE,
        channel="cli",
        reason="simulate: synthetic close",
    )
    return price


@dataclass
class DayRow:
    code: str
    note: str = ""  # "" when played, else why the day was skipped
    result: str = ""
    bets: int = 0
    replays: int = 0
    volume_u: int = 0
    fee_u: int = 0
    dust_u: int = 0
    deposits_u: int = 0
    withdrawals_u: int = 0
    refusals: Counter = field(default_factory=Counter)
    settled_at_et: str = ""
    settle_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def house_u(self) -> int:
        return self.fee_u + self.dust_u


@dataclass
class SimulationReport:
    days: list[DayRow]
    bettors: int
    seed: int
    ledger_ok: bool
    ledger_volume_u: int
    ledger_house_u: int
    wall_seconds: float

    @property
    def played(self) -> list[DayRow]:
        return [d for d in self.days if not d.note]

    @property
    def totals_match(self) -> bool:
        return (
            sum(d.volume_u for d in self.played) == self.ledger_volume_u
            and sum(d.house_u for d in self.played) == self.ledger_house_u
        )


@dataclass(frozen=True)
class BetEvent:
    at: datetime
    bettor: int
    seq: int
    kind: str  # "bet" | "replay" | "bad_*"
    side: str
    stake_u: int


def trading_days(*, count: int, start: date | None, today: date) -> list[date]:
    """`count` trading days from `start`, else the `count` trading days before `today` (ET)."""
    days: list[date] = []
    if start is None:
        day = today
        while len(days) < count:
            day = trading_day_previous(day=day)
            days.append(day)
        return sorted(days)
    day = start
    while len(days) < count:
        if market_close_at(day=day) is not None:
            days.append(day)
        day += timedelta(days=1)
        if (day - start).days > count * 3 + 31:
            break
    return days


def synthetic_bettors(count: int) -> list[User]:
    """Synthetic bettors sim-00001..: found or created (no password), in index order."""
    users = []
    for index in range(1, count + 1):
        email = synthetic_email(index)
        try:
            user = user_get_by_email(email=email)
        except NotFound:
            user = user_create(email=email, can_log_in=False)
        users.append(user)
    return users


class Simulator:
    def __init__(
        self,
        *,
        days: list[date],
        bettors: int,
        seed: int,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.days = days
        self.bettor_count = bettors
        self.seed = seed
        self.rng = random.Random(seed)
        self.progress = progress
        self.users: list[User] = []
        self.price = FIRST_PRICE

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> SimulationReport:
        started = time.monotonic()
        tz = market_timezone()
        first = self.days[0]
        with time_machine.travel(datetime.combine(first, datetime.min.time(), tzinfo=tz).replace(hour=7), tick=False):
            self.users = synthetic_bettors(self.bettor_count)
            reference_day = trading_day_previous(day=first)
            self.price = synthetic_close_record(day=reference_day, price=FIRST_PRICE)
        rows = []
        for number, day in enumerate(self.days, start=1):
            row = self.play_day(day)
            rows.append(row)
            self.progress(
                f"day {number}/{len(self.days)} {row.code}: "
                + (row.note or f"{row.bets} bets, {row.volume_u / USDC:,.2f} USDC, {row.result}")
                + f" ({row.wall_seconds:.1f} s)"
            )
        codes = [row.code for row in rows if not row.note]
        audit = ledger_audit()
        return SimulationReport(
            days=rows,
            bettors=self.bettor_count,
            seed=self.seed,
            ledger_ok=audit.ok,
            ledger_volume_u=entries_sum_u(
                accounts=[account_code_round_pool(round_code=c) for c in codes], ref_type="bet"
            ),
            ledger_house_u=entries_sum_u(accounts=[HOUSE_ACCOUNT], ref_type="settlement", ref_ids=codes),
            wall_seconds=time.monotonic() - started,
        )

    # --- one day ----------------------------------------------------------------------------

    def play_day(self, day: date) -> DayRow:
        started = time.monotonic()
        code = day.strftime("%Y%m%d")
        row = DayRow(code=code)
        close_at = market_close_at(day=day)
        rng = random.Random(f"{self.seed}:{code}")  # the day's own stream: a skipped day changes no other day
        drift = rng.gauss(0, 0.01)
        next_price = (self.price * (1 + Decimal(str(round(drift, 6))))).quantize(Decimal("0.01"))
        if close_at is None:
            row.note = "market closed"
            return row
        if Round.objects.filter(code=code).exists():
            row.note = "round exists: skipped"
            recorded = official_close_get(symbol=settings.MARKET_SYMBOL, day=day)
            self.price = recorded.price if recorded is not None else self.price
            return row
        tz = market_timezone()
        morning = datetime.combine(day, datetime.min.time(), tzinfo=tz).replace(hour=8)
        opens_at = morning.replace(hour=9, minute=30)
        lock_at = close_at - timedelta(seconds=1)
        with time_machine.travel(morning, tick=False) as clock:
            round_open(code=code, source="cli", reason="simulate: a synthetic trading day")
            self._deposits(row, rng, day)
            events = self._bet_events(rng, opens_at=opens_at, lock_at=lock_at)
            withdraw_at = opens_at.replace(hour=12)
            withdrawn = False
            for event in events:
                if not withdrawn and event.at >= withdraw_at:
                    clock.move_to(withdraw_at)
                    self._withdrawals(row, rng, code)
                    withdrawn = True
                clock.move_to(event.at)
                self._bet(row, event, code)
            clock.move_to(lock_at)
            round_lock(code=code, source="cli", reason="simulate: lock_at")
            late = rng.randrange(self.bettor_count)
            clock.move_to(lock_at + timedelta(seconds=2))  # a bet after the lock: refused round_not_open
            self._bet(row, BetEvent(lock_at, late, 999, "bad_late", "UP", 2 * USDC), code)
            clock.move_to(close_at + timedelta(minutes=1))
            self.price = synthetic_close_record(day=day, price=next_price)
            settle_at = close_at + timedelta(minutes=5)
            clock.move_to(settle_at)
            t0 = time.monotonic()
            settlement = round_settle(
                code=code, result="AUTO", source="cli", reason="simulate: AUTO from the synthetic close"
            )
            row.settle_seconds = time.monotonic() - t0
            row.result = settlement.result
            row.fee_u, row.dust_u = settlement.fee_u, settlement.dust_u
            row.settled_at_et = f"{settle_at.astimezone(tz):%H:%M:%S} ET"
        row.wall_seconds = time.monotonic() - started
        return row

    def _deposits(self, row: DayRow, rng: random.Random, day: date) -> None:
        code = day.strftime("%Y%m%d")
        for index, user in enumerate(self.users, start=1):
            balance_u = user_balance_u(user_id=user.pk)
            if balance_u >= 50 * USDC and rng.random() > 0.1:
                continue
            amount_u = rng.choice([100, 200, 500, 1000, 2000]) * USDC
            deposit_credit(
                user=user,
                amount_u=amount_u,
                tx_id=f"sim:{self.seed}:{code}:{index}",
                source="simulation",
                from_address=simulated_wallet_address(user_id=user.pk),
            )
            row.deposits_u += amount_u
            self.on_deposit(index - 1, amount_u)

    def _bet_events(self, rng: random.Random, *, opens_at: datetime, lock_at: datetime) -> list[BetEvent]:
        up_bias = rng.uniform(0.3, 0.7)
        day_seconds = int((lock_at - opens_at).total_seconds()) - 120
        events = []
        for bettor in range(self.bettor_count):
            if rng.random() > 0.6:
                continue  # not betting today
            count = rng.choice([1, 1, 1, 2, 2, 3])
            late = rng.random() < 0.2  # a late burst in the last minute before lock
            for seq in range(count):
                if late and seq == count - 1:
                    at = lock_at - timedelta(seconds=rng.randrange(2, 60))
                else:
                    at = opens_at + timedelta(seconds=rng.randrange(day_seconds))
                side = "UP" if rng.random() < up_bias else "DOWN"
                stake_u = rng.choices(STAKE_SIZES_USDC, STAKE_WEIGHTS)[0] * USDC
                kind = "bet"
                roll = rng.random()
                if roll < 0.05:
                    kind = "replay"  # the client retries with the same Idempotency-Key
                elif roll < 0.08:
                    kind = rng.choice(["bad_small", "bad_side", "bad_conflict", "bad_funds"])
                events.append(BetEvent(at, bettor, seq, kind, side, stake_u))
        events.sort(key=lambda e: (e.at, e.bettor, e.seq))
        return events

    def _key(self, code: str, event: BetEvent) -> str:
        return f"sim-{self.seed}-{code}-{event.bettor}-{event.seq}"

    def _bet(self, row: DayRow, event: BetEvent, code: str) -> None:
        user = self.users[event.bettor]
        key = self._key(code, event)
        side, stake_u = event.side, event.stake_u
        if event.kind == "bad_small":
            stake_u = 1  # below every minimum stake
        elif event.kind == "bad_side":
            side = "SIDEWAYS"
        elif event.kind == "bad_funds":
            stake_u = user_balance_u(user_id=user.pk) + USDC
        attempts = [(side, stake_u, key)]
        if event.kind == "replay":
            attempts.append((side, stake_u, key))
        elif event.kind == "bad_conflict":
            attempts.append((side, stake_u + USDC, key))  # the same key, another request: 422
        first: tuple[int, int] | None = None
        for attempt_side, attempt_stake_u, attempt_key in attempts:
            try:
                bet, created = self.place(
                    user=user,
                    side=attempt_side,
                    stake_u=attempt_stake_u,
                    round_code=code,
                    idempotency_key=attempt_key,
                    request_digest=bet_request_digest(side=attempt_side, stake_u=attempt_stake_u, round_code=code),
                    source="cli",
                )
            except ApplicationError as exc:
                row.refusals[exc.code] += 1
                continue
            if created:
                row.bets += 1
                row.volume_u += bet.stake_u
                self.on_bet(event, bet)
                first = (bet.pk, bet.stake_u)
            else:
                row.replays += 1
                self.on_replay(event, first, (bet.pk, bet.stake_u))

    # --- what a subclass (risk.chaos) watches and where it steps in; nothing here -------------

    def place(self, **request):
        return bet_place(**request)

    def on_deposit(self, bettor: int, amount_u: int) -> None:
        pass

    def on_bet(self, event: BetEvent, bet) -> None:
        pass

    def on_replay(self, event: BetEvent, first: tuple[int, int] | None, again: tuple[int, int]) -> None:
        pass

    def on_withdrawal(self, bettor: int, withdrawal) -> None:
        pass

    def _withdrawals(self, row: DayRow, rng: random.Random, code: str) -> None:
        for index, user in enumerate(self.users):
            if rng.random() > 0.05:
                continue
            balance_u = user_balance_u(user_id=user.pk)
            amount_u = (balance_u // 4) // USDC * USDC
            if amount_u < USDC:
                continue
            try:
                withdrawal, _ = withdrawal_request(
                    user=user, amount_u=amount_u, source="cli", idempotency_key=f"sim-{self.seed}-{code}-w{index}"
                )
            except ApplicationError as exc:
                row.refusals[f"withdrawal:{exc.code}"] += 1
                continue
            row.withdrawals_u += amount_u
            self.on_withdrawal(index, withdrawal)


# --- the table ---------------------------------------------------------------------------------


def _usdc(amount_u: int) -> str:
    return f"{amount_u / USDC:,.2f}"


def report_table(report: SimulationReport) -> list[str]:
    """The day-by-day table: only what the seed decides (no wall times), so one seed prints one table."""
    header = (
        f"{'day':<9} {'result':<6} {'bets':>6} {'replays':>7} {'volume USDC':>14} {'fee u':>12} {'dust u':>7} "
        f"{'house P&L u':>12} {'settled':>12} {'deposited':>11} {'withdrawn':>10}  refusals by code"
    )
    lines = [header, "-" * len(header)]
    total = DayRow(code="total")
    for d in report.days:
        if d.note:
            lines.append(f"{d.code:<9} {d.note}")
            continue
        refusals = " ".join(f"{code}:{n}" for code, n in sorted(d.refusals.items())) or "-"
        lines.append(
            f"{d.code:<9} {d.result:<6} {d.bets:>6} {d.replays:>7} {_usdc(d.volume_u):>14} {d.fee_u:>12} "
            f"{d.dust_u:>7} {d.house_u:>12} {d.settled_at_et:>12} {_usdc(d.deposits_u):>11} "
            f"{_usdc(d.withdrawals_u):>10}  {refusals}"
        )
        total.bets += d.bets
        total.replays += d.replays
        total.volume_u += d.volume_u
        total.fee_u += d.fee_u
        total.dust_u += d.dust_u
        total.deposits_u += d.deposits_u
        total.withdrawals_u += d.withdrawals_u
        total.refusals.update(d.refusals)
    lines.append("-" * len(header))
    refusals = " ".join(f"{code}:{n}" for code, n in sorted(total.refusals.items())) or "-"
    lines.append(
        f"{'total':<9} {'':<6} {total.bets:>6} {total.replays:>7} {_usdc(total.volume_u):>14} {total.fee_u:>12} "
        f"{total.dust_u:>7} {total.house_u:>12} {'':>12} {_usdc(total.deposits_u):>11} "
        f"{_usdc(total.withdrawals_u):>10}  {refusals}"
    )
    lines.append(
        f"ledger: volume into the pools {report.ledger_volume_u} u, house from these settlements "
        f"{report.ledger_house_u} u = Σ fees + dust {total.house_u} u: "
        + ("match" if report.totals_match else "MISMATCH")
    )
    return lines
