"""Chaos days: `simulate --faults` plays the trading days of `risk.simulation` while the world misbehaves.

A seeded fault schedule (random.Random(f"chaos:{seed}")) places faults in each day's timeline, against
the real services and processes, never a mock of our own code:

    08:00 ET  the lifecycle tick opens the round          beat_twice: two ticks at once (threads on PostgreSQL)
    08:05     deposits; webhook_repeat: a deposit delivered 2-5 times through the real signed webhook
              (POST /api/v1/deposits/webhook), out of order with another; some of them only at 20:00
    08:30     restore: the morning backup (pg_dump)
    09:30..   bets (the simulator's own mix)               db_blip: PostgreSQL terminates our backend
                                                           between a bet and its commit; the client retries
              live mode (--live local): the bets over HTTP to a real gunicorn (2 workers) on this database
              and the day's clock; web_kill: kill -9 of the worker serving a bet, half-way through its
              transaction; the master respawns it, the client retries with the same Idempotency-Key
    12:30     withdrawals requested
    13:30     payout runs (13:30, +lease+60 s, 16:30, 21:30) through the HTTP payout adapter to a custodian
              stub on a local port, its state outside our database (risk.chaos_custodian): custodian_fail
              (refused), custodian_timeout (times out, never received), custodian_late_success (times
              out, pays after the claim's lease ran out; staff "mark failed" it in between); worker_kill
              (odd n): kill -9 of a real Celery worker between a payout sent and recorded, then a restarted one
    15:59:59  the tick locks                               beat_late: minutes late (bets still refused)
    16:05     the tick settles AUTO: the close from the three vendor presets on a local stub, by quorum;
              source_down / source_slow / source_lies / source_garbage strike one of them;
              worker_kill (even n): kill -9 of the worker half-way through the settlement; beat_late / twice
    22:00     restore: maintenance on, the loss list checked against the model and confirmed, restored,
              maintenance off, the round (now without bets) settled again
    end       the invariant checker (`day_check`)

After every day the checker proves, with ledger_audit's and reconcile's own code and the simulator's own
model of every synthetic bettor (deposits - stakes + payouts + refunds - withdrawals, the payouts computed
here from the true closes, the refunds from what the custodian says), that nothing was lost.
One seed gives one schedule and one fingerprint (`fingerprint`: balances, bets, rounds, withdrawals,
without ids or timestamps).
"""

import copy
import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import time_machine
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections, transaction
from django.test import Client, override_settings
from django.utils import timezone

import withdrawals.services.payouts as payouts
from betting.services import bet_place, user_api_token
from common.errors import ApplicationError
from ledger.selectors import ledger_audit, user_balance_u
from marketdata.oracle import source_specs
from marketdata.selectors import market_close_at, market_timezone, official_close_get, reference_close_get
from marketdata.services import price_source_update
from risk.chaos_custodian import FAILED, CustodianStub
from risk.chaos_processes import chaos_ports
from risk.simulation import USDC, BetEvent, DayRow, Simulator
from rounds.models import Round
from rounds.selectors import round_code_parse
from rounds.services import round_lifecycle_tick
from withdrawals.exceptions import PayoutInFlight
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_request
from withdrawals.webhooks import webhook_signature

FAULT_KINDS = (
    "webhook_repeat",
    "custodian_fail",
    "custodian_timeout",
    "custodian_late_success",
    "db_blip",
    "beat_late",
    "beat_twice",
    "restore",
    "worker_kill",
    "web_kill",
    "source_down",
    "source_slow",
    "source_lies",
    "source_garbage",
)
LIVE = "local"  # `simulate --faults ... --live local`: the bets go over HTTP to a gunicorn this run starts
BETS_PATH = "/api/v1/bets"
WEBHOOK_PATH = "/api/v1/deposits/webhook"
CHAOS_START = "20250106"
SOURCE_TIMEOUT_MS = 1000  # a fixed first day: one seed plays the same days whatever today is
CUSTODIAN_TIMEOUT_SECONDS = 1.5  # our adapter's timeout against the custodian stub (a hold outlasts it)


def fault_kinds_parse(text: str) -> list[str]:
    """ "all" or KIND[,KIND...] -> kinds in FAULT_KINDS order; ValueError names an unknown kind."""
    text = (text or "").strip()
    if text == "all":
        return list(FAULT_KINDS)
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"Unknown fault kind {', '.join(unknown) or '(none)'}; one of: all, {', '.join(FAULT_KINDS)}.")
    return [k for k in FAULT_KINDS if k in kinds]


def kinds_skipped(kinds: list[str], *, live: bool = False) -> dict[str, str]:
    """The asked kinds this run cannot play, with why (shown in the table)."""
    skipped = {}
    if "web_kill" in kinds and not live:
        skipped["web_kill"] = f"live mode only (simulate --faults ... --live {LIVE})"
    elif "web_kill" in kinds and connection.vendor != "postgresql":
        skipped["web_kill"] = "PostgreSQL only (gunicorn's workers share the database)"
    if "db_blip" in kinds and connection.vendor != "postgresql":
        skipped["db_blip"] = "PostgreSQL only (SQLite has no backend to terminate)"
    if "restore" in kinds and connection.vendor != "postgresql":
        skipped["restore"] = "PostgreSQL only here (pg_dump / pg_restore)"
    if "worker_kill" in kinds and (connection.vendor != "postgresql" or not shutil.which("redis-server")):
        skipped["worker_kill"] = "PostgreSQL and redis-server only (a real worker on a private broker)"
    return skipped


@dataclass(frozen=True)
class Fault:
    day: int  # 1-based, the day's number in the run
    kind: str
    n: int  # the fault's own draw: deliveries, minutes late, which bet, ...

    def describe(self) -> str:
        return f"{self.kind}(n={self.n}) on day {self.day}"


def fault_schedule(*, seed: int, days: int, kinds: list[str], rate: float) -> list[Fault]:
    """Each kind on each day with probability `rate`, and every kind at least once; from the seed alone."""
    rng = random.Random(f"chaos:{seed}")
    faults = []
    for day in range(1, days + 1):
        for kind in kinds:
            if rng.random() < rate:
                faults.append(Fault(day, kind, rng.randrange(2, 6)))
    for kind in kinds:
        if not any(f.kind == kind for f in faults):
            faults.append(Fault(rng.randrange(1, days + 1), kind, rng.randrange(2, 6)))
    return sorted(faults, key=lambda f: (f.day, FAULT_KINDS.index(f.kind)))


# --- the checker ------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ChaosDay:
    number: int
    code: str
    faults: list[Fault]
    checks: list[Check] = field(default_factory=list)
    restore_loss: Check | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


class InvariantBroken(Exception):
    def __init__(self, *, seed: int, day: ChaosDay, run_args: str = "") -> None:
        self.seed, self.day, self.broken = seed, day, [c.name for c in day.failures]
        before = day.faults[-1].describe() if day.faults else "no fault that day"
        what = "; ".join(f"{c.name}: {c.detail}" for c in day.failures)
        super().__init__(
            f"seed {seed} day {day.number} ({day.code}): after {before}: invariant broke: {what}. "
            f"Replay: simulate --replay {seed} --day {day.number}{run_args}"
        )


# --- the simulator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpBet:
    """What the bets API answered (live mode): the bet as the model needs it."""

    pk: int
    side: str
    stake_u: int


class ChaosSimulator(Simulator):
    """`Simulator` with a fault schedule, the lifecycle run by its tick, a payout run, and a check each day."""

    def __init__(
        self, *, kinds: list[str], rate: float, stop_after: int | None = None, live: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if live and connection.vendor != "postgresql":
            raise ApplicationError(
                "Chaos in live mode needs PostgreSQL (gunicorn shares the database).", code="live_needs_postgres"
            )
        self.live = live  # the bets over HTTP to a real gunicorn (risk.chaos_processes.Gunicorn), each day
        self.skipped = kinds_skipped(kinds, live=live)
        playable = [k for k in kinds if k not in self.skipped]
        self.schedule = fault_schedule(seed=self.seed, days=len(self.days), kinds=playable, rate=rate)
        self.stop_after = stop_after
        # what a replay needs besides the seed: the schedule depends on the days, the kinds and the rate
        self.run_args = (
            f" --start {self.days[0]:%Y%m%d} --days {len(self.days)} --bettors {self.bettor_count} "
            f"--faults {','.join(kinds)} --fault-rate {rate}" + (f" --live {LIVE}" if live else "")
        )
        self.web: Any = None  # the day's gunicorn, in live mode
        self.http = requests.Session()
        self.tokens: dict[Any, str] = {}
        self.web_kill_event: int | None = None
        self.fault_errors: Counter = Counter()  # 5xx / dropped connections a fault caused: its own, counted
        self.kills_web: list[str] = []  # what each web_kill's victim request saw
        self.web_kill_keys: list[str] = []  # the Idempotency-Key of each request that died with its worker
        self.model_cash = [0] * self.bettor_count
        self.day_bets: list[tuple[int, str, int]] = []
        self.withdrawals: dict[int, tuple[int, int, str]] = {}  # id -> (bettor, amount_u, reference)
        self.replay_mismatches: list[str] = []
        self.blip_event: int | None = None
        self.event_seq = 0
        self.responses_5xx = 0
        self.chaos_days: list[ChaosDay] = []
        self.injected: Counter = Counter()
        self.expected_flags: set[int] = set()
        self.refunds_modelled: set[int] = set()
        self.model_bets_total = 0
        self.redis: Any = None
        self.stub: Any = None  # the price vendors' stub server, when a source_* kind is played
        self.uses_sources = any(k.startswith("source_") for k in playable)
        self.source_faults: dict[str, tuple[str, str]] = {}  # day code -> (source struck, kinds)
        self.restored: set[str] = set()
        self.webhook_answers: dict[str, int] = {}
        self.kills: list[str] = []  # where each worker_kill struck: settlement | payout
        self._custodian: CustodianStub | None = None  # started by run(); what it paid stays readable after
        self.written_off: set[str] = set()  # references the custodian paid that a confirmed restore erased
        self.paid_at_backup: set[str] = set()  # what the custodian had paid when the morning backup was taken

    def run(self):
        self._custodian = CustodianStub(ports=chaos_ports(), timeout=CUSTODIAN_TIMEOUT_SECONDS)
        try:
            return super().run()
        finally:
            self._web_stop()
            self.custodian.stop()
            self._broker_drop()
            if self.stub is not None:
                self.stub.stop()
                self.stub = None

    @property
    def custodian(self) -> CustodianStub:
        if self._custodian is None:
            raise RuntimeError("the custodian stub starts with run()")
        return self._custodian

    def _broker_drop(self) -> None:
        """After each kill: a fresh broker next time. The killed worker's message (acks late) is otherwise
        restored by the next worker once its visibility timeout has passed on the simulated clock, a day later."""
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def _worker(self, **env: str):
        from risk.chaos_processes import PrivateRedis, Worker

        if self.redis is None:
            self.redis = PrivateRedis()
        custodian = {name: str(value) for name, value in self.custodian.settings().items()}
        return Worker(self.redis.url, CHAOS_CLOCK=timezone.now().isoformat(), **custodian, **env).start()

    def _worker_kill_settlement(self, clock, at: datetime, code: str) -> None:
        """kill -9 of the real worker half-way through the settlement's transaction; a restarted one settles."""
        from ledger.selectors import HOUSE_ACCOUNT
        from risk.chaos_processes import kill9_while_waiting, wait_for

        clock.move_to(at)
        worker = self._worker()
        try:
            kill9_while_waiting(worker, account=HOUSE_ACCOUNT, task="rounds.lifecycle_tick")
        finally:
            worker.stop()
        if Round.objects.get(code=code).status != Round.Status.LOCKED:
            raise AssertionError(f"worker_kill: round {code} is not LOCKED after the killed settlement")
        clock.move_to(at + timedelta(minutes=1))
        restarted = self._worker()
        try:
            restarted.send("rounds.lifecycle_tick")
            wait_for(lambda: Round.objects.get(code=code).status == Round.Status.SETTLED, "the settlement")
        finally:
            restarted.stop()
            self._broker_drop()
        self.injected["worker_kill"] += 1
        self.kills.append("settlement")

    def _worker_kill_payout(self, clock, withdrawal_id: int) -> None:
        """kill -9 of the real worker between a payout sent and recorded; a restarted one asks, then records."""
        from ledger.models import Account
        from risk.chaos_processes import kill9_while_waiting, wait_for

        lease = {"WITHDRAWAL_PROCESSING_LEASE_SECONDS": "1"}
        worker = self._worker(**lease)
        try:
            kill9_while_waiting(worker, account=Account.EXTERNAL_WITHDRAWALS, task="withdrawals.process_batch", limit=1)
        finally:
            worker.stop()
        clock.move_to(timezone.now() + timedelta(minutes=2))  # the dead worker's lease has run out
        restarted = self._worker(**lease)
        try:
            restarted.send("withdrawals.process_batch")  # the killed batch comes back too (acks late)
            wait_for(lambda: Withdrawal.objects.get(pk=withdrawal_id).status == "COMPLETED", "the resumed payout")
        finally:
            restarted.stop()
            self._broker_drop()
        self.injected["worker_kill"] += 1
        self.kills.append("payout")

    # --- the model's hooks ------------------------------------------------------------------

    def on_deposit(self, bettor: int, amount_u: int) -> None:
        self.model_cash[bettor] += amount_u

    def on_bet(self, event: BetEvent, bet) -> None:
        self.model_cash[event.bettor] -= bet.stake_u
        self.day_bets.append((event.bettor, bet.side, bet.stake_u))
        self.model_bets_total += 1

    def on_replay(self, event: BetEvent, first: tuple[int, int] | None, again: tuple[int, int]) -> None:
        if first is not None and first != again:
            self.replay_mismatches.append(f"bettor {event.bettor} seq {event.seq}: {first} then {again}")

    def on_withdrawal(self, bettor: int, withdrawal) -> None:
        self.model_cash[bettor] -= withdrawal.amount_u
        self.withdrawals[withdrawal.pk] = (bettor, withdrawal.amount_u, withdrawal.reference)

    def place(self, **request):
        self.event_seq += 1
        if self.event_seq == self.blip_event == self.web_kill_event:  # one fault per request: the kill waits
            self.web_kill_event += 1
        if self.blip_event is None or self.event_seq != self.blip_event:
            if self.web is not None:
                return self._place_http(request, kill=self.event_seq == self.web_kill_event)
            return bet_place(**request)
        self.injected["db_blip"] += 1
        try:
            with transaction.atomic():
                bet_place(**request)
                _terminate_own_backend()
        except DatabaseError:
            connection.close()  # the client sees a dropped connection and retries the same request
        else:
            raise AssertionError("db_blip: the transaction committed on a terminated backend")
        return bet_place(**request)

    # --- live mode: the bets over HTTP to a real gunicorn; web_kill ----------------------------

    def _web_start(self, at: datetime) -> None:
        """gunicorn on this database, its clock at `at` (the day's opening) and ticking; the bettors' tokens."""
        from risk.chaos_processes import Gunicorn

        self.web = Gunicorn(clock=at.isoformat()).start()
        if not self.tokens:  # made once, and again after a restore (which may erase them)
            self.tokens = {user.pk: user_api_token(user=user) for user in self.users}

    def _web_stop(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    def _post_bet(self, body: dict, headers: dict) -> requests.Response:
        """The client: the same request again (same Idempotency-Key) after a 5xx or a dropped connection;
        each such answer not caused by a fault is counted (the checker allows none)."""
        for _ in range(3):
            try:
                response = self.http.post(f"{self.web.url}{BETS_PATH}", json=body, headers=headers, timeout=30)
            except requests.RequestException:
                self.responses_5xx += 1
                continue
            if response.status_code < 500:
                return response
            self.responses_5xx += 1
        raise AssertionError(f"bet over HTTP: no answer but 5xx or dropped connections, 3 times: {body}")

    def _place_http(self, request: dict, *, kill: bool) -> tuple[Any, bool]:
        user = request["user"]
        body = {"side": request["side"], "stake_u": request["stake_u"], "round": request["round_code"]}
        headers = {"Authorization": f"Token {self.tokens[user.pk]}", "Idempotency-Key": request["idempotency_key"]}
        response = self._web_kill(user, body, headers) if kill else None
        if response is None:
            response = self._post_bet(body, headers)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code in (200, 201):
            bet = HttpBet(pk=answer["id"], side=answer["side"], stake_u=answer["stake_u"])
            return bet, response.status_code == 201
        raise ApplicationError(str(answer.get("detail", "")), code=str(answer.get("code", response.status_code)))

    def _web_kill(self, user, body: dict, headers: dict) -> requests.Response | None:
        """kill -9 of the gunicorn worker serving this bet, half-way through its transaction (the bettor's cash
        account row held by another connection); the master respawns it; None: the bettor's client retries.
        A request refused before it reaches the ledger (nothing to kill it in) is answered as it is, and the
        fault moves on to the next request."""
        from ledger.selectors import account_code_user_cash
        from risk.chaos_processes import (
            backend_client_port,
            backend_gone,
            backend_waiting_on_a_lock,
            holding_account_row,
            wait_for,
        )

        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                outcome["response"] = requests.post(
                    f"{self.web.url}{BETS_PATH}", json=body, headers=headers, timeout=30
                )
            except requests.RequestException as exc:
                outcome["error"] = exc

        victim = threading.Thread(target=send)
        with holding_account_row(account_code_user_cash(user_id=user.pk)):
            victim.start()
            backend = wait_for(
                lambda: backend_waiting_on_a_lock("%ledger_accounts%") or (not victim.is_alive() and -1), "the bet"
            )
            if backend == -1:  # answered without touching the bettor's cash: not this one
                assert self.web_kill_event is not None
                self.web_kill_event += 1
                return outcome.get("response")
            self.web.kill9_worker(self.web.worker_serving(backend_client_port(backend)))
            victim.join(timeout=30)
        wait_for(lambda: backend_gone(backend), "the dead worker's transaction to end")
        response = outcome.get("response")
        if response is not None and response.status_code < 500:
            raise AssertionError(f"web_kill: the request outlived its worker ({response.status_code})")
        self.fault_errors["web_kill"] += 1
        self.kills_web.append(type(outcome["error"]).__name__ if response is None else str(response.status_code))
        self.web_kill_keys.append(headers["Idempotency-Key"])
        self.injected["web_kill"] += 1
        return None

    # --- one day ----------------------------------------------------------------------------

    def play_day(self, day: date) -> DayRow:
        number = self.days.index(day) + 1
        code = day.strftime("%Y%m%d")
        faults = [f for f in self.schedule if f.day == number]
        chaos_day = ChaosDay(number=number, code=code, faults=faults)
        if self.stop_after is not None and number > self.stop_after:
            return DayRow(code=code, note=f"after day {self.stop_after}: not replayed")
        with override_settings(
            **self.custodian.settings(), EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"
        ):
            row = self._play_chaos_day(day, code, {f.kind: f for f in faults}, chaos_day)
            if not row.note:
                self._refund_model()
                chaos_day.checks = day_check(self, code=code)
                if chaos_day.restore_loss is not None:
                    chaos_day.checks.insert(0, chaos_day.restore_loss)
                self.chaos_days.append(chaos_day)
                if chaos_day.failures:
                    raise InvariantBroken(seed=self.seed, day=chaos_day, run_args=self.run_args)
        return row

    def _tick(self, clock, at: datetime, *, twice: bool) -> None:
        clock.move_to(at)
        if not twice:
            round_lifecycle_tick()
            return
        self.injected["beat_twice"] += 1
        if connection.vendor != "postgresql":
            round_lifecycle_tick()
            round_lifecycle_tick()
            return
        errors: list[BaseException] = []

        def tick() -> None:
            try:
                round_lifecycle_tick()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
            finally:
                close_old_connections()
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _play_chaos_day(self, day: date, code: str, faults: dict[str, Fault], chaos_day: ChaosDay) -> DayRow:
        started = time.monotonic()
        row = DayRow(code=code)
        close_at = market_close_at(day=day)
        rng = random.Random(f"{self.seed}:{code}")
        drift = rng.gauss(0, 0.01)
        next_price = (self.price * (1 + Decimal(str(round(drift, 6))))).quantize(Decimal("0.01"))
        if close_at is None:
            row.note = "market closed"
            return row
        if Round.objects.filter(code=code).exists():
            row.note = "round exists: skipped (chaos needs a fresh database)"
            return row
        chaos = random.Random(f"chaos:{self.seed}:{code}")  # the faults' own draws: the day's stream is untouched
        tz = market_timezone()
        morning = datetime.combine(day, datetime.min.time(), tzinfo=tz).replace(hour=8)
        opens_at = morning.replace(hour=9, minute=30)
        lock_at = close_at - timedelta(seconds=1)
        self.day_bets = []
        late = faults.get("beat_late")
        twice = faults.get("beat_twice")
        twice_at = chaos.choice(["open", "lock", "settle"]) if twice else ""
        with time_machine.travel(morning, tick=False) as clock:
            if self.uses_sources and self.stub is None:
                self._sources_start()
            self._tick(clock, morning, twice=twice_at == "open")
            self._deposits(row, rng, day)
            webhooks = self._webhook_plan(faults.get("webhook_repeat"), chaos, code)
            clock.move_to(morning.replace(minute=5))
            self._deliver(webhooks, late=False)
            backup = self._morning_backup(clock, morning.replace(minute=30)) if "restore" in faults else None
            events = self._bet_events(rng, opens_at=opens_at, lock_at=lock_at)
            self.event_seq = 0
            self.blip_event = chaos.randrange(1, len(events) + 1) if "db_blip" in faults and events else None
            self.web_kill_event = None
            if "web_kill" in faults and events:  # a request of the day's stream, not the blip's
                self.web_kill_event = chaos.choice([n for n in range(1, len(events) + 1) if n != self.blip_event])
            if self.live:
                self._web_start(opens_at)
            withdraw_at = opens_at.replace(hour=12)
            withdrawn = False
            for event in events:
                if not withdrawn and event.at >= withdraw_at:
                    clock.move_to(withdraw_at)
                    self._withdrawals(row, rng, code)
                    self._payouts(clock, withdraw_at.replace(hour=13), faults, chaos, code)
                    withdrawn = True
                clock.move_to(event.at)
                self._bet(row, event, code)
            self._web_stop()
            self._tick(clock, lock_at + timedelta(minutes=late.n if late else 0), twice=twice_at == "lock")
            if late:
                self.injected["beat_late"] += 1
            clock.move_to(lock_at + timedelta(seconds=2))
            self._bet(row, BetEvent(lock_at, rng.randrange(self.bettor_count), 999, "bad_late", "UP", 2 * USDC), code)
            clock.move_to(close_at + timedelta(minutes=1))
            previous = self.price
            if self.stub is not None:  # the close comes from the price sources' quorum at settlement
                self._sources_answer(day, next_price, faults, chaos)
                self.price = next_price
            else:
                self.price = self.synthetic_close(day=day, price=next_price)
            settle_at = close_at + timedelta(minutes=5 + (late.n if late else 0))
            t0 = time.monotonic()
            kill = faults.get("worker_kill")
            up = sum(s for _, side, s in self.day_bets if side == "UP")
            down = sum(s for _, side, s in self.day_bets if side == "DOWN")
            if kill and kill.n % 2 == 0 and up and down and self.price != previous:  # a settlement that pays
                self._worker_kill_settlement(clock, settle_at, code)
            else:
                self._tick(clock, settle_at, twice=twice_at == "settle")
                if kill and kill.n % 2 == 0:  # nothing to pay (VOID): the kill goes to a payout run instead
                    self._worker_kill_payout(clock, self._extra_withdrawal(chaos, code, "worker_kill"))
            row.settle_seconds = time.monotonic() - t0
            self._settle_model(code, previous=previous)
            for at_hour in (16, 21):
                clock.move_to(morning.replace(hour=at_hour, minute=30))
                self.custodian.land_due()
                payouts.withdrawals_process(source="beat")
                if at_hour == 16:
                    clock.move_to(morning.replace(hour=20))
                    self._deliver(webhooks, late=True)
            if backup is not None:
                self._night_restore(clock, morning.replace(hour=22), backup, code, chaos_day)
        round_ = Round.objects.get(code=code)
        settlement = getattr(round_, "settlement", None)
        row.result = round_.result or round_.status
        if settlement is not None:
            row.fee_u, row.dust_u = settlement.fee_u, settlement.dust_u
            row.settled_at_et = f"{settle_at.astimezone(tz):%H:%M:%S} ET"
        row.volume_u = sum(stake for _, _, stake in self.day_bets)
        row.wall_seconds = time.monotonic() - started
        return row

    def summary(self, *, broken: "InvariantBroken | None") -> dict[str, Any]:
        """What `make chaos` adds up: days, faults by kind, checks, failures, the fingerprint."""
        failures = [str(broken)] if broken is not None else []
        return {
            "seed": self.seed,
            "days": len(self.chaos_days),
            "bettors": self.bettor_count,
            "faults": dict(sorted(self.injected.items())),
            "scheduled": dict(sorted(Counter(f.kind for f in self.schedule).items())),
            "skipped": self.skipped,
            "fault_errors": dict(sorted(self.fault_errors.items())),
            "written_off": len(self.written_off),
            "live": self.live,
            "checks": sum(len(d.checks) for d in self.chaos_days),
            "failures": failures,
            "fingerprint": fingerprint(self.custodian) if broken is None else "",
        }

    def synthetic_close(self, *, day: date, price: Decimal) -> Decimal:
        from risk.simulation import synthetic_close_record

        return synthetic_close_record(day=day, price=price)

    # --- the model of settlement ------------------------------------------------------------

    def _settle_model(self, code: str, *, previous: Decimal) -> None:
        """What each bettor is owed, from the true closes (this simulator's prices) and its own bets; credited to
        the model only when the round says SETTLED (a LOCKED round owes nothing yet)."""
        round_ = Round.objects.get(code=code)
        if round_.status != Round.Status.SETTLED:
            return
        up = sum(s for _, side, s in self.day_bets if side == "UP")
        down = sum(s for _, side, s in self.day_bets if side == "DOWN")
        close = self.price  # the true close: what the honest sources said (the model never reads the table)
        result = "UP" if close > previous else "DOWN" if close < previous else "VOID"
        if up == 0 or down == 0:
            result = "VOID"
        self.model_result = {**getattr(self, "model_result", {}), code: result}
        for bettor, side, stake in self.day_bets:
            if result == "VOID":
                self.model_cash[bettor] += stake
            elif side == result:
                winners, losers = (up, down) if result == "UP" else (down, up)
                self.model_cash[bettor] += stake + stake * (losers - losers * round_.fee_bps // 10_000) // winners

    def _refund_model(self) -> None:
        """A withdrawal the custodian refused is owed back: the custodian's word, not our rows."""
        for pk, (bettor, amount_u, reference) in self.withdrawals.items():
            if pk not in self.refunds_modelled and self.custodian.state(reference) == FAILED:
                self.model_cash[bettor] += amount_u
                self.refunds_modelled.add(pk)

    # --- money edges ------------------------------------------------------------------------

    def _webhook_plan(self, fault: Fault | None, chaos: random.Random, code: str) -> list[tuple[dict, bool]]:
        """Two deposits, A delivered `n` times and B 2 times, shuffled; some deliveries only at 20:00 (late)."""
        if fault is None:
            return []
        self.injected["webhook_repeat"] += 1
        deliveries = []
        for label, times in (("a", fault.n), ("b", 2)):
            bettor = chaos.randrange(self.bettor_count)
            payload = {
                "tx_id": f"chaos:{self.seed}:{code}:webhook-{label}",
                "amount_u": chaos.choice([50, 100, 300]) * USDC,
                "user_id": str(self.users[bettor].pk),
            }
            deliveries += [(dict(payload, bettor=bettor), chaos.random() < 0.3) for _ in range(times)]
        chaos.shuffle(deliveries)
        return deliveries

    def _deliver(self, deliveries: list[tuple[dict, bool]], *, late: bool) -> None:
        client = Client()
        for payload, is_late in deliveries:
            if is_late != late:
                continue
            bettor = payload["bettor"]
            body = json.dumps(
                {k: v for k, v in payload.items() if k != "bettor"} | {"timestamp": int(time.time())}
            ).encode()
            signature = webhook_signature(raw_body=body)
            response = client.post(WEBHOOK_PATH, data=body, content_type="application/json", HTTP_X_SIGNATURE=signature)
            if response.status_code >= 500:
                self.responses_5xx += 1
                continue
            if response.status_code != 200:
                raise AssertionError(f"webhook answered {response.status_code}: {response.content[:200]!r}")
            answer = response.json()
            first = self.webhook_answers.setdefault(payload["tx_id"], answer["id"])
            if first != answer["id"]:  # the same delivery again must answer the same deposit
                self.replay_mismatches.append(f"webhook {payload['tx_id']}: deposit {first} then {answer['id']}")
            if answer["credited"]:
                self.model_cash[bettor] += payload["amount_u"]

    # --- price sources: the three vendor presets on a local stub, one of them misbehaving -------

    def _sources_start(self) -> None:
        """The stub vendors (marketdata/stub_vendors.py) on this run's ports; the presets pointed at it."""
        from marketdata import stub_vendors

        self.stub = stub_vendors.StubVendors(ports=chaos_ports())
        os.environ.setdefault("ALPHAVANTAGE_API_KEY", "av-test-key")  # the workers inherit them
        os.environ.setdefault("TWELVEDATA_API_KEY", "td-test-key")
        for source in source_specs(enabled_only=False):
            host = stub_vendors.VENDOR_HOSTS[source.name]
            config = {
                key: value.replace(host, f"{self.stub.base}/{source.name}") if isinstance(value, str) else value
                for key, value in source.config.items()
            }
            price_source_update(
                name=source.name,
                changes={"config": config, "enabled": True, "timeout_ms": SOURCE_TIMEOUT_MS},
                channel="cli",
                reason="chaos: the presets on the local stub vendors",
            )

    def _sources_answer(self, day: date, price: Decimal, faults: dict[str, Fault], chaos: random.Random) -> None:
        """Every vendor answers the true close of `day`; the day's source faults all strike one of them."""
        from marketdata import stub_vendors as sv

        kinds = [k for k in ("source_down", "source_slow", "source_lies", "source_garbage") if k in faults]
        struck = chaos.choice(sorted(sv.VENDOR_HOSTS)) if kinds else ""
        closes = {name: {day: str(price)} for name in sv.VENDOR_HOSTS}
        if "source_lies" in kinds:
            closes[struck] = {day: str((price * Decimal("1.01")).quantize(Decimal("0.01")))}
        routes = {
            "stooq": (sv.STOOQ_CLOSE, sv.stooq_daily),
            "alphavantage": (sv.AV_QUERY, sv.alphavantage_daily),
            "twelvedata": (sv.TD_SERIES, sv.twelvedata_series),
        }
        for name, (path, answer) in routes.items():
            self.stub.set(path, answer(closes[name]))
        if struck:
            path, answer = routes[struck]
            honest = answer(closes[struck])
            down = "source_down" in kinds
            slow = SOURCE_TIMEOUT_MS / 1000 + 0.5 if "source_slow" in kinds else 0.0
            garbage = faults["source_garbage"].n % 3 if "source_garbage" in kinds else None

            def misbehaving(query, headers):
                if down:
                    return 503, "text/plain", b"Service Unavailable", 0.0
                if garbage == 0:
                    return 200, "text/html", b"<!doctype html><html><body>Rate limit exceeded</body></html>", slow
                if garbage is not None:  # a zero close, or one dated the next day
                    wrong = {day: "0"} if garbage == 1 else {day + timedelta(days=1): str(price)}
                    if struck == "twelvedata" and garbage == 2:
                        return 200, "application/json", b'{"values": [], "status": "ok"}', slow
                    status, ctype, body, _ = answer(wrong)(query, headers)
                    return status, ctype, body, slow
                status, ctype, body, _ = honest(query, headers)
                return status, ctype, body, slow

            self.stub.set(path, misbehaving)
            self.source_faults[day.strftime("%Y%m%d")] = (struck, ",".join(kinds))
            for kind in kinds:
                self.injected[kind] += 1

    # --- operations: the morning backup restored at night -------------------------------------

    MODEL_STATE = ("model_cash", "withdrawals", "refunds_modelled", "model_bets_total", "expected_flags", "day_bets")

    def _morning_backup(self, clock, at: datetime) -> tuple[Any, dict[str, Any], str]:
        from ops.backup import backup_create

        clock.move_to(at)
        directory = tempfile.mkdtemp(prefix="chaos-backup-")
        backup = backup_create(directory=Path(directory), source="cli", reason="chaos: the morning backup")
        self.paid_at_backup = set(self.custodian.paid())
        return backup, copy.deepcopy({name: getattr(self, name) for name in self.MODEL_STATE}), directory

    def _night_restore(self, clock, at: datetime, backup: tuple[Any, dict[str, Any], str], code: str, day) -> None:
        """Maintenance on, the loss listed and checked against the model, confirmed, restored; the model goes
        back to the morning; maintenance off, and the round (now without bets) is locked and settled again."""
        from ops.backup import backup_restore
        from ops.exceptions import LossNotConfirmed
        from ops.services import ops_maintenance

        made, morning_model, directory = backup
        clock.move_to(at)
        ops_maintenance(active=True, reason="chaos: restore the morning backup", source="cli")
        clock.move_to(at + timedelta(minutes=5))
        lost_bets = self.model_bets_total - morning_model["model_bets_total"]
        lost_withdrawals = len(self.withdrawals) - len(morning_model["withdrawals"])
        # what the custodian paid since the backup: the backup holds those withdrawals unpaid, or not at all
        lost_paid = {ref for _, _, ref in self.withdrawals.values()} & (
            set(self.custodian.paid()) - self.paid_at_backup
        )
        try:
            backup_restore(path=made.path, source="cli")
            raise AssertionError("restore: ran without the loss confirmed")
        except LossNotConfirmed as exc:
            loss = exc.loss
        listed = (loss.summary["bets"], loss.summary["withdrawals"], loss.summary["withdrawals_paid_out"])
        day.restore_loss = Check(
            "restore_lost_what_the_model_expects",
            listed == (lost_bets, lost_withdrawals, len(lost_paid)) and loss.summary["settlements"] == 1,
            f"the loss lists {listed[0]} bets, {listed[1]} withdrawals ({listed[2]} already paid out), "
            f"{loss.summary['settlements']} settlement(s); the model expects {lost_bets}, {lost_withdrawals} "
            f"({len(lost_paid)} paid at the custodian), 1",
        )
        backup_restore(path=made.path, confirm_loss=loss.sha256, source="cli", reason="chaos: restore drill")
        shutil.rmtree(directory, ignore_errors=True)
        for name, value in morning_model.items():
            setattr(self, name, value)
        self.written_off |= lost_paid  # paid, and erased from our books: the confirmed loss names them
        self.tokens = {}  # the bettors' API tokens made since the backup are gone too
        self.injected["restore"] += 1
        self.restored.add(code)
        previous = reference_close_get(symbol=settings.MARKET_SYMBOL, day=round_code_parse(code=code))
        assert previous is not None
        self.synthetic_close(day=round_code_parse(code=code), price=self.price)  # the close was lost too
        ops_maintenance(active=False, source="cli")
        self._tick(clock, at + timedelta(minutes=10), twice=False)
        self._settle_model(code, previous=previous.price)

    def _extra_withdrawal(self, chaos: random.Random, code: str, label: str) -> int:
        """A 5 USDC withdrawal from a bettor the fault's draw picks among the funded ones; its id."""
        funded = [i for i, user in enumerate(self.users) if user_balance_u(user_id=user.pk) >= 10 * USDC]
        index = chaos.choice(funded)
        withdrawal, _ = withdrawal_request(
            user=self.users[index], amount_u=5 * USDC, source="cli", idempotency_key=f"chaos-{self.seed}-{code}-{label}"
        )
        self.on_withdrawal(index, withdrawal)
        return withdrawal.pk

    def _payouts(self, clock, at: datetime, faults: dict[str, Fault], chaos: random.Random, code: str) -> None:
        """The payout run, with the custodian's faults on today's withdrawals (one each, in id order)."""
        kinds = [k for k in ("custodian_fail", "custodian_timeout", "custodian_late_success") if k in faults]
        today = sorted(pk for pk in self.withdrawals if Withdrawal.objects.filter(pk=pk, status="QUEUED").exists())
        for kind in kinds[len(today) :]:  # a fault needs a withdrawal to hit: one more, from a funded bettor
            today.append(self._extra_withdrawal(chaos, code, kind))
        late_ids = []
        for kind, pk in zip(kinds, today, strict=False):
            reference = self.withdrawals[pk][2]
            behaviour = {"custodian_fail": "fail", "custodian_timeout": "timeout"}.get(kind, "late")
            self.custodian.behaviour[reference] = behaviour
            if kind == "custodian_late_success":
                lease = settings.WITHDRAWAL_PROCESSING_LEASE_SECONDS
                lands_at = at + timedelta(seconds=lease) + timedelta(minutes=5 + faults[kind].n)
                self.custodian.lands_at[reference] = lands_at
                late_ids.append(pk)
            self.injected[kind] += 1
        clock.move_to(at)
        payouts.withdrawals_process(source="beat")
        clock.move_to(at + timedelta(seconds=settings.WITHDRAWAL_PROCESSING_LEASE_SECONDS + 30))
        for pk in late_ids:  # staff see it stuck and "mark failed": refused, flagged for reconciliation
            try:
                payouts.withdrawal_fail(withdrawal_id=pk, reason="chaos: stuck, staff mark failed", source="admin")
            except PayoutInFlight:
                self.expected_flags.add(pk)
        clock.move_to(at + timedelta(seconds=settings.WITHDRAWAL_PROCESSING_LEASE_SECONDS + 60))
        payouts.withdrawals_process(source="beat")
        kill = faults.get("worker_kill")
        if kill and kill.n % 2 == 1:  # after the runs above: the worker (acks late) finds only its own item due
            clock.move_to(at + timedelta(minutes=10))
            self._worker_kill_payout(clock, self._extra_withdrawal(chaos, code, "worker_kill"))


def _terminate_own_backend() -> None:
    """Another connection ends ours (pg_terminate_backend) while our transaction is open, and waits for it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(200):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.01)
    finally:
        killer.close()


# --- the invariants -------------------------------------------------------------------------


def day_check(sim: ChaosSimulator, *, code: str) -> list[Check]:
    """Every invariant, after one simulated day (see the module docstring)."""
    from betting.models import Bet
    from ops.models import Alert
    from ops.reports import reconcile
    from rounds.models import RoundSettlement

    checks = []
    audit = ledger_audit()
    checks.append(
        Check(
            "batches_sum_to_zero",
            not audit.unbalanced_batches and audit.global_sum_u == 0,
            f"unbalanced {audit.unbalanced_batches[:3]}, global {audit.global_sum_u}",
        )
    )
    mismatches = audit.balance_mismatches
    checks.append(Check("cached_balances_equal_entries", not mismatches, str(mismatches[:3])))
    result = reconcile(payout_days=None)
    failing = [f"{label}: {problems[:2]}" for label, ok, problems in result.checks if not ok]
    checks.append(Check("reconcile", result.ok, "; ".join(failing)))
    wrong = []
    for index, user in enumerate(sim.users):
        cash = user_balance_u(user_id=user.pk)
        if cash != sim.model_cash[index]:
            wrong.append(f"{user.email} cash {cash} u, model {sim.model_cash[index]} u")
    checks.append(Check("bettor_cash_equals_model", not wrong, "; ".join(wrong[:5])))
    # the custodian's word, from its own state (outside our database: a restore does not rewind it)
    paid = sim.custodian.paid()
    ours = {w.reference: w for w in Withdrawal.objects.filter(user_id__in=[u.pk for u in sim.users])}
    both = [
        f"withdrawal {w.pk} ({w.amount_u} u) paid at the custodian and refunded"
        for reference, w in sorted(ours.items(), key=lambda item: item[1].pk)
        if w.status == Withdrawal.Status.FAILED and reference in paid
    ]
    checks.append(Check("never_paid_and_refunded", not both, "; ".join(both)))
    unknown = custodian_payouts_unknown(sim, ours=set(ours))
    checks.append(Check("custodian_pays_only_ours", not unknown, "; ".join(unknown[:3])))
    round_ = Round.objects.get(code=code)
    settlements = RoundSettlement.objects.filter(round=round_).count()
    from ledger.models import LedgerBatch

    batches = LedgerBatch.objects.filter(ref_type="settlement", ref_id=code).count()
    open_alert = Alert.objects.filter(status=Alert.Status.OPEN, summary__contains=code).exists()
    moved = 1 if Bet.objects.filter(round=round_).exists() else 0  # a round without bets moves no money
    once = (round_.status == Round.Status.SETTLED and settlements == 1 and batches == moved) or (
        round_.status == Round.Status.LOCKED and settlements == 0 and open_alert
    )
    expected = getattr(sim, "model_result", {}).get(code)
    checks.append(
        Check(
            "round_settled_once",
            once and (expected is None or round_.result == expected),
            f"{code} {round_.status} {round_.result} (model {expected}), {settlements} settlements, {batches} batches",
        )
    )
    # every bet the model placed is one row, and the round's pools, its bets' stakes and its pool account agree
    from django.db.models import Sum

    from ledger.selectors import account_code_round_pool, entries_sum_u

    bets = Bet.objects.filter(round=round_)
    staked = bets.aggregate(total=Sum("stake_u"))["total"] or 0
    modelled = sum(stake for _, _, stake in sim.day_bets)
    into_pool = entries_sum_u(accounts=[account_code_round_pool(round_code=code)], ref_type="bet")
    pools = round_.up_pool_u + round_.down_pool_u
    checks.append(
        Check(
            "each_bet_once_pools_match",
            bets.count() == len(sim.day_bets) and staked == modelled == pools == into_pool,
            f"{bets.count()} bets (model {len(sim.day_bets)}), staked {staked} u (model {modelled}), "
            f"pools {pools} u, into the pool account {into_pool} u",
        )
    )
    checks.append(Check("same_key_same_answer", not sim.replay_mismatches, "; ".join(sim.replay_mismatches[:3])))
    flags_missing = []
    for pk in sim.expected_flags:
        withdrawal = Withdrawal.objects.get(pk=pk)
        if withdrawal.status == Withdrawal.Status.PROCESSING and not withdrawal.needs_reconciliation:
            flags_missing.append(f"withdrawal {pk} not flagged for reconciliation")
    checks.append(Check("fault_raised_its_flag", not flags_missing, "; ".join(flags_missing)))
    if code in sim.restored:
        raised = Alert.objects.filter(key__startswith="restore:", status=Alert.Status.OPEN).exists()
        checks.append(Check("restore_raised_its_alert", raised, "no open restore alert"))
    if sim.stub is not None and code not in sim.restored:
        close = official_close_get(symbol=settings.MARKET_SYMBOL, day=round_code_parse(code=code))
        truth = sim.price
        struck, kinds = sim.source_faults.get(code, ("", ""))
        accepted_struck = struck and _source_accepted(code, struck)
        checks.append(
            Check(
                "close_is_the_truth",
                close is not None and close.price == truth and close.source == "quorum" and not accepted_struck,
                f"close {close.price if close else None} ({close.source if close else '-'}), truth {truth}; "
                f"{struck or 'no source'} struck by {kinds or '-'}{' and ACCEPTED' if accepted_struck else ''}",
            )
        )
    checks.append(Check("no_unexplained_5xx", sim.responses_5xx == 0, f"{sim.responses_5xx} responses 5xx"))
    return checks


def custodian_payouts_unknown(sim: ChaosSimulator, *, ours: set[str] | None = None) -> list[str]:
    """What the custodian paid that is no withdrawal of ours, nor one a confirmed restore listed as paid out."""
    if ours is None:
        ours = {w.reference for w in Withdrawal.objects.filter(user_id__in=[u.pk for u in sim.users])}
    return [
        f"payout {reference} ({payout.amount_u} u) paid at the custodian, no withdrawal of ours"
        for reference, payout in sorted(sim.custodian.paid().items())
        if reference not in ours and reference not in sim.written_off
    ]


def _source_accepted(code: str, source: str) -> bool:
    """Did the quorum that decided the day's close accept `source`'s quote?"""
    from marketdata.models import CloseQuote

    return CloseQuote.objects.filter(
        close_check__date=round_code_parse(code=code), close_check__outcome="accepted", source=source, accepted=True
    ).exists()


def fingerprint(custodian: CustodianStub | None = None) -> str:
    """sha256 of balances, bets, rounds and withdrawals of the synthetic bettors, and what the custodian paid
    them, without ids or timestamps."""
    from django.contrib.auth import get_user_model

    from betting.models import Bet
    from risk.simulation import SYNTHETIC_DOMAIN

    domain = "@" + SYNTHETIC_DOMAIN
    users = {}
    for user in get_user_model().objects.filter(email__endswith=domain).order_by("email"):
        users[user.pk] = (user.email, user_balance_u(user_id=user.pk))
    bets = sorted(
        (r.round.code, users[r.user_id][0], r.side, r.stake_u, r.status, r.payout_u)
        for r in Bet.objects.filter(user_id__in=users).select_related("round")
    )
    codes = {code for code, *_ in bets}  # only the simulated days' rounds (a real worker's tick opens today's)
    rounds = list(
        Round.objects.filter(code__in=codes)
        .order_by("code")
        .values_list("code", "status", "result", "up_pool_u", "down_pool_u")
    )
    references = {}
    withdrawals = []
    for w in Withdrawal.objects.filter(user_id__in=users):
        references[w.reference] = users[w.user_id][0]
        withdrawals.append((users[w.user_id][0], w.amount_u, w.status, w.needs_reconciliation))
    payouts = custodian.payouts.values() if custodian is not None else []
    custodian_paid = sorted((references.get(p.reference, "?"), p.amount_u, p.state) for p in payouts)
    state = {
        "balances": sorted(users.values()),
        "bets": bets,
        "rounds": [list(r) for r in rounds],
        "withdrawals": sorted(withdrawals),
        "custodian": custodian_paid,
    }
    return hashlib.sha256(json.dumps(state, default=str, sort_keys=True).encode()).hexdigest()


def chaos_table(summaries: list[dict[str, Any]]) -> list[str]:
    """One table over runs: seeds, days, faults by kind (injected; skipped kinds say why), checks, failures."""
    injected: Counter = Counter()
    caused: Counter = Counter()
    skipped: dict[str, str] = {}
    written_off = 0
    for summary in summaries:
        injected.update(summary["faults"])
        caused.update(summary.get("fault_errors", {}))
        written_off += summary.get("written_off", 0)
    for summary in summaries:  # a kind skipped in one run (web_kill out of live mode) but played in another is played
        skipped.update({k: why for k, why in summary["skipped"].items() if k not in injected})
    lines = [
        f"chaos: {len(summaries)} seed(s), {sum(s['days'] for s in summaries)} day(s) simulated, "
        f"{sum(s['checks'] for s in summaries)} invariant checks, "
        f"{sum(len(s['failures']) for s in summaries)} failure(s)",
        f"{'fault kind':<24} {'injected':>8}  note",
    ]
    for kind in FAULT_KINDS:
        if kind in skipped:
            lines.append(f"{kind:<24} {'-':>8}  skipped: {skipped[kind]}")
        elif kind in injected:
            note = f"  {caused[kind]} dropped connection(s) / 5xx, the fault's own" if caused[kind] else ""
            if kind == "restore" and written_off:
                note = f"  {written_off} payout(s) the custodian made erased, each listed in the confirmed loss"
            lines.append(f"{kind:<24} {injected[kind]:>8}{note}")
    for summary in summaries:
        for failure in summary["failures"]:
            lines.append(f"FAIL {failure}")
    return lines
