"""Reads about rounds: lookups, the current round, settlement previews, verification."""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.db.models import BooleanField, ExpressionWrapper, Max, Q, QuerySet

from betting.selectors import (
    bet_get,
    bet_payout_preview,
    bet_payouts_iter,
    bet_receipt_rows_iter,
    bet_round_totals,
)
from marketdata.oracle import ClosePrice
from marketdata.selectors import close_evidence_get, official_close_get, reference_close_get, trading_day_previous
from rounds.exceptions import (
    InvalidResult,
    InvalidRoundCode,
    InvalidTransition,
    NoOfficialClose,
    RoundAlreadySettled,
    RoundNotLocked,
    RoundNotOpen,
    UnknownRound,
)
from rounds.hashing import commit_hash_compute, settlement_digest_compute
from rounds.merkle import MerkleRoot, Pseudonyms, leaves_iter, merkle_path, payouts_into_tree
from rounds.models import Round, RoundSettlement

logger = logging.getLogger(__name__)

_CODE = re.compile(r"^\d{8}$")


def round_code_parse(*, code: str) -> date:
    """A round code is the trading day as YYYYMMDD; anything else is refused."""
    text = str(code or "").strip()
    if not _CODE.match(text):
        raise InvalidRoundCode(f"Round code must be a date as YYYYMMDD, got {code!r}.")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise InvalidRoundCode(f"Round code {code!r} is not a real date.") from None


def round_get(*, code: str) -> Round:
    round_code_parse(code=code)
    round_ = Round.objects.filter(code=str(code).strip()).first()
    if round_ is None:
        raise UnknownRound(f"No round {code}.")
    return round_


def rounds_open() -> QuerySet[Round]:
    """The OPEN rounds, earliest first: the first one is the current round, where a bet without a code goes."""
    return Round.objects.filter(status=Round.Status.OPEN).order_by("code")


_SUMMARY_GENERATION = "rounds:summary:generation"


def round_current_cached(*, render: Callable[[Round], Any] | None = None, shape: str = "round") -> Any:
    """round_current_or_last_settled(), from the cache while no round has changed (GET /rounds/current,
    the busiest read); with `render`, what render(round) makes of it (the API's JSON body), cached as
    `shape`. None when there is no round.

    Every change to what it shows (a round opened, a bet raising a pool, a lock, a settlement)
    bumps a generation counter in the shared cache when its transaction commits
    (round_summary_changed); the summary is stored with the generation it was read in, and a read
    fetches both in one round trip (MGET): a summary from another generation is not used, so a
    reader that raced a change can only store one no later reader takes. Only with
    ROUND_SUMMARY_CACHE (a cache shared by every web process: Redis in production; a per-process
    cache would let a worker show a pool another worker has since raised).
    """
    if not settings.ROUND_SUMMARY_CACHE:
        round_ = round_current_or_last_settled()
        return render(round_) if render is not None and round_ is not None else round_
    key = f"rounds:current:{shape}"
    found = cache.get_many([_SUMMARY_GENERATION, key])
    generation = found.get(_SUMMARY_GENERATION)
    if generation is None:
        cache.add(_SUMMARY_GENERATION, 0, timeout=None)
        generation = cache.get(_SUMMARY_GENERATION, 0)
    stored = found.get(key)
    if stored is not None and stored[0] == generation:
        return stored[1] or None  # "" caches "no current round"
    round_ = round_current_or_last_settled()
    value = render(round_) if render is not None and round_ is not None else round_
    cache.set(key, (generation, value or ""), timeout=settings.ROUND_SUMMARY_CACHE_SECONDS)
    return value


def round_summary_changed() -> None:
    """A round's summary changed: the next read of round_current_cached goes to the database."""
    if not settings.ROUND_SUMMARY_CACHE:
        return
    try:
        try:
            cache.incr(_SUMMARY_GENERATION)
        except ValueError:  # no counter yet (or evicted): start one past any generation read so far
            cache.add(_SUMMARY_GENERATION, 1, timeout=None)
    except Exception:  # noqa: BLE001 - the change is committed; a cache outage must not turn it into a 500
        logger.exception("could not invalidate the round summary cache")


def round_current() -> Round | None:
    """The round bettors see: the open one (earliest, if several are open), else the latest locked one."""
    open_round = rounds_open().first()
    if open_round is not None:
        return open_round
    return Round.objects.filter(status=Round.Status.LOCKED).order_by("-code").first()


def round_current_or_last_settled() -> Round | None:
    """What /rounds/current answers: the current round, else (after settlement, before the next opens) the most
    recently settled one, its status saying SETTLED; None only when there has never been a round."""
    current = round_current()
    if current is not None:
        return current
    return Round.objects.filter(status=Round.Status.SETTLED).order_by("-code").first()


# --- Transitions -------------------------------------------------------------
# OPEN -> LOCKED -> SETTLED. Stated here once: the services refuse with it, the admin asks it
# why an action is not offered.


def round_transition_refusal(*, round_: Round, action: str) -> InvalidTransition | None:
    """Why `action` ("lock" or "settle") may not happen to the round now, or None when it may."""
    if action == "lock":
        if round_.status != Round.Status.OPEN:
            return RoundNotOpen(f"Round {round_.code} is {round_.status}; only an OPEN round can be locked.")
        return None
    if action == "settle":
        if round_.status == Round.Status.SETTLED:
            return RoundAlreadySettled(
                f"Round {round_.code} is already settled ({round_.result}); nothing was changed."
            )
        if round_.status != Round.Status.LOCKED:
            return RoundNotLocked(f"Round {round_.code} is {round_.status}; lock it before settling.")
        return None
    raise ValueError(f"unknown round action {action!r}")


# --- Settlement arithmetic ---------------------------------------------------
# The payout rule (DESIGN.md): fee = floor(losing × fee_bps / 10 000); each winning
# bet gets stake + floor(stake × (losing − fee) / winning) (betting.selectors holds that
# per-bet SQL); fee and rounding dust go to the house.

REQUESTED_RESULTS = ("AUTO", "UP", "DOWN", "VOID")


@dataclass(frozen=True)
class SettlementPlan:
    requested_result: str
    result: str  # the result that will be applied (UP, DOWN or VOID)
    why: str
    close: ClosePrice | None
    reference: ClosePrice | None
    up_pool_u: int
    down_pool_u: int
    up_count: int
    down_count: int
    fee_bps: int

    @property
    def pool_u(self) -> int:
        return self.up_pool_u + self.down_pool_u

    @property
    def bets_count(self) -> int:
        return self.up_count + self.down_count

    @property
    def winning_pool_u(self) -> int:
        return {"UP": self.up_pool_u, "DOWN": self.down_pool_u}.get(self.result, 0)

    @property
    def losing_pool_u(self) -> int:
        return {"UP": self.down_pool_u, "DOWN": self.up_pool_u}.get(self.result, 0)

    @property
    def fee_u(self) -> int:
        return self.losing_pool_u * self.fee_bps // 10_000 if self.result != "VOID" else 0

    @property
    def distributable_u(self) -> int:
        return self.losing_pool_u - self.fee_u


def result_validate(*, result: str) -> str:
    text = str(result or "").strip().upper()
    if text not in REQUESTED_RESULTS:
        raise InvalidResult(f"Result must be one of {', '.join(REQUESTED_RESULTS)}, got {result!r}.")
    return text


def settlement_plan_get(*, round_: Round, result: str) -> SettlementPlan:
    """Which result applies and with which pools. AUTO without both closes raises NoOfficialClose."""
    requested = result_validate(result=result)
    day = round_code_parse(code=round_.code)
    close = official_close_get(symbol=round_.symbol, day=day)
    reference = reference_close_get(symbol=round_.symbol, day=day)
    up_u, down_u, up_n, down_n = bet_round_totals(round_id=round_.pk)
    if requested == "AUTO":
        if close is None or reference is None:
            missing = " and ".join(
                f"{what} ({day_:%Y-%m-%d})"
                for what, price, day_ in (
                    ("official close", close, day),
                    ("previous close", reference, trading_day_previous(day=day)),
                )
                if price is None
            )
            raise NoOfficialClose(
                f"The oracle has no {missing} of {round_.symbol}: round {round_.code} stays LOCKED. "
                "Enter the close with set_close (or the admin) and settle AUTO, or settle UP/DOWN/VOID by hand."
            )
        if close.price > reference.price:
            outcome, why = "UP", f"close {close.price} above previous close {reference.price}"
        elif close.price < reference.price:
            outcome, why = "DOWN", f"close {close.price} below previous close {reference.price}"
        else:
            outcome, why = "VOID", f"tie: close equals previous close {reference.price}"
    else:
        outcome, why = requested, "set by hand"
    if outcome != "VOID" and (up_u == 0 or down_u == 0):
        outcome, why = "VOID", "one side has no stake"
    return SettlementPlan(
        requested_result=requested,
        result=outcome,
        why=why,
        close=close,
        reference=reference,
        up_pool_u=up_u,
        down_pool_u=down_u,
        up_count=up_n,
        down_count=down_n,
        fee_bps=round_.fee_bps,
    )


@dataclass(frozen=True)
class SettlementPreview:
    plan: SettlementPlan
    winners_count: int
    paid_out_u: int  # Σ payouts to bettors, stakes included
    fee_u: int
    dust_u: int


def round_settlement_preview(*, code: str, result: str) -> SettlementPreview:
    """Exactly what round_settle would pay, computed by the same SQL, without writing anything."""
    round_ = round_get(code=code)
    plan = settlement_plan_get(round_=round_, result=result)
    if plan.result == "VOID":
        return SettlementPreview(plan=plan, winners_count=0, paid_out_u=plan.pool_u, fee_u=0, dust_u=0)
    winners, paid = bet_payout_preview(
        round_id=round_.pk,
        side=plan.result,
        distributable_u=plan.distributable_u,
        winning_pool_u=plan.winning_pool_u,
    )
    return SettlementPreview(
        plan=plan,
        winners_count=winners,
        paid_out_u=paid,
        fee_u=plan.fee_u,
        dust_u=plan.pool_u - plan.fee_u - paid,
    )


@dataclass(frozen=True)
class RoundVerification:
    code: str
    commit_hash_ok: bool
    stored_commit_hash: str
    computed_commit_hash: str
    chain_ok: bool
    previous_code: str | None
    settled: bool
    digest_ok: bool | None  # None while not settled
    stored_digest: str
    computed_digest: str
    root_ok: bool | None = None  # None while not settled, or settled before receipts (rule_version 1)
    stored_root: str = ""
    computed_root: str = ""

    @property
    def ok(self) -> bool:
        return self.commit_hash_ok and self.chain_ok and self.digest_ok is not False and self.root_ok is not False


def round_verify(*, code: str) -> RoundVerification:
    """Recompute the round's commit hash (and its link to the previous round) and its settlement digest."""
    round_ = round_get(code=code)
    computed_commit = commit_hash_compute(
        code=round_.code,
        symbol=round_.symbol,
        lock_at=round_.lock_at,
        settle_at=round_.settle_at,
        fee_bps=round_.fee_bps,
        rule_version=round_.rule_version,
        prev_commit_hash=round_.prev_commit_hash,
        prev_settlement_digest=round_.prev_settlement_digest,
    )
    previous = (
        Round.objects.filter(id__lt=round_.pk).order_by("-id").only("code", "commit_hash", "settlement_digest").first()
    )
    chain_ok = round_.prev_commit_hash == (previous.commit_hash if previous is not None else "")
    # The previous digest the chain carries is the one it had when this round opened: "" or today's.
    chain_ok = chain_ok and round_.prev_settlement_digest in ("", previous.settlement_digest if previous else "")
    settlement = RoundSettlement.objects.filter(round=round_).first()
    computed_digest = computed_root = ""
    digest_ok = root_ok = None
    if settlement is not None:
        receipts = MerkleRoot()
        payouts: Iterable[tuple[int, int]] = bet_payouts_iter(round_id=round_.pk)
        if round_.rule_version >= 2:
            rows = bet_receipt_rows_iter(round_id=round_.pk)
            payouts = payouts_into_tree(receipts, round_code=round_.code, rows=rows)
        computed_digest = settlement_digest_compute(
            commit_hash=computed_commit,
            result=settlement.result,
            close_price=round_.close_price,
            close_source=round_.close_source,
            reference_price=round_.reference_price,
            reference_source=round_.reference_source,
            up_pool_u=settlement.up_pool_u,
            down_pool_u=settlement.down_pool_u,
            fee_u=settlement.fee_u,
            payouts=payouts,
            merkle_root=(lambda: receipts.root) if round_.rule_version >= 2 else None,
        )
        digest_ok = computed_digest == round_.settlement_digest == settlement.digest
        if round_.rule_version >= 2:
            computed_root = receipts.root
            root_ok = computed_root == settlement.merkle_root
    return RoundVerification(
        code=round_.code,
        commit_hash_ok=computed_commit == round_.commit_hash,
        stored_commit_hash=round_.commit_hash,
        computed_commit_hash=computed_commit,
        chain_ok=chain_ok,
        previous_code=previous.code if previous is not None else None,
        settled=settlement is not None,
        digest_ok=digest_ok,
        stored_digest=round_.settlement_digest,
        computed_digest=computed_digest,
        root_ok=root_ok,
        stored_root=settlement.merkle_root if settlement is not None else "",
        computed_root=computed_root,
    )


# --- Reads for operations (ops reads rounds only through these) ---------------


@dataclass(frozen=True)
class OverdueRound:
    code: str
    settle_at: datetime
    marked: bool  # the beat retried AUTO through the grace, found no close and set overdue_since


def _overdue_q(now: datetime) -> Q:
    grace = timedelta(seconds=settings.ROUND_SETTLE_GRACE_SECONDS)
    return Q(status=Round.Status.LOCKED) & (Q(settle_at__lte=now - grace) | Q(overdue_since__isnull=False))


def rounds_overdue(*, now: datetime) -> list[OverdueRound]:
    """The one definition of an overdue round: LOCKED and not settled by settle_at + ROUND_SETTLE_GRACE_SECONDS.

    Overdue from the grace's last second on (settle_at + grace <= now), or from the moment the
    beat marked it (overdue_since), whichever is first. The beat marks it, the alerts, the
    circuit breaker and the health check report it, all from this selector (the terminal
    dashboard from the same condition, `_overdue_q`, in rounds_board), oldest first.
    """
    rows = Round.objects.filter(_overdue_q(now)).order_by("code").values_list("code", "settle_at", "overdue_since")
    return [OverdueRound(code=code, settle_at=settle_at, marked=since is not None) for code, settle_at, since in rows]


class LastSettled(TypedDict):
    code: str
    result: str | None  # never None once settled; the column is nullable for the open rounds


def round_last_settled() -> LastSettled | None:
    """{"code", "result"} of the latest settled round, or None before the first settlement."""
    return Round.objects.filter(status=Round.Status.SETTLED).order_by("-code").values("code", "result").first()


def round_latest() -> Round | None:
    return Round.objects.order_by("-code").first()


@dataclass(frozen=True)
class RoundPools:
    code: str
    status: str
    up_pool_u: int
    down_pool_u: int

    @property
    def unsettled(self) -> bool:
        return self.status in (Round.Status.OPEN, Round.Status.LOCKED)


def rounds_pools() -> list[RoundPools]:
    """Every round's cached pools, newest first (reconciliation compares them with the ledger and the stakes)."""
    return [
        RoundPools(code=code, status=status, up_pool_u=up_u, down_pool_u=down_u)
        for code, status, up_u, down_u in Round.objects.order_by("-code").values_list(
            "code", "status", "up_pool_u", "down_pool_u"
        )
    ]


def rounds_settled_count(*, start: datetime, end: datetime) -> int:
    return Round.objects.filter(settled_at__gte=start, settled_at__lt=end).count()


def rounds_changed_since(*, since: datetime) -> list[Round]:
    """Rounds created, locked or settled from `since` on (what a restore to an older backup may undo), by code."""
    return list(
        Round.objects.filter(Q(created_at__gte=since) | Q(locked_at__gte=since) | Q(settled_at__gte=since)).order_by(
            "code"
        )
    )


def round_settlements_since(*, since: datetime) -> list[RoundSettlement]:
    return list(RoundSettlement.objects.filter(created_at__gte=since).select_related("round").order_by("id"))


def round_results(*, codes: list[str]) -> dict[str, str | None]:
    """{round code: result (None while unsettled)} for statement lines."""
    return dict(Round.objects.filter(code__in=codes).values_list("code", "result"))


def rounds_voided_by_hand(*, since: datetime) -> list[RoundSettlement]:
    """Emergency voids: a person asked for VOID (admin, API, command), not AUTO finding no result."""
    return list(
        RoundSettlement.objects.filter(
            created_at__gte=since, requested_result="VOID", source__in=("admin", "api", "cli")
        )
        .select_related("round", "settled_by")
        .order_by("id")
    )


def rounds_tables() -> dict[str, str]:
    """The tables rounds owns, by role: for whole-database tools (backup provenance, restore loss)."""
    return {"rounds": Round._meta.db_table, "settlements": RoundSettlement._meta.db_table}


def rounds_last_writes() -> dict[str, datetime | None]:
    """{"table.column": latest stamp} of every timestamp rounds stamps on a write (the restore's quiet clock)."""
    rounds = Round._meta.db_table
    latest = Round.objects.aggregate(
        created=Max("created_at"), locked=Max("locked_at"), settled=Max("settled_at"), overdue=Max("overdue_since")
    )
    return {
        f"{RoundSettlement._meta.db_table}.created_at": RoundSettlement.objects.aggregate(at=Max("created_at"))["at"],
        f"{rounds}.created_at": latest["created"],
        f"{rounds}.locked_at": latest["locked"],
        f"{rounds}.settled_at": latest["settled"],
        f"{rounds}.overdue_since": latest["overdue"],
    }


# --- The terminal dashboard's round panel (ops.terminal) -----------------------


@dataclass(frozen=True)
class RoundConcentration:
    bettors: int
    up_top_u: int  # the largest one user's Σ stake on UP
    down_top_u: int
    top_u: int  # the largest one user's Σ stake over both sides


@dataclass(frozen=True)
class RoundBoard:
    id: int
    code: str
    symbol: str
    status: str
    lock_at: datetime
    settle_at: datetime
    up_pool_u: int
    down_pool_u: int
    holders: RoundConcentration

    @property
    def pool_u(self) -> int:
        return self.up_pool_u + self.down_pool_u


@dataclass(frozen=True)
class SettlementSummary:
    code: str
    result: str
    requested_result: str  # AUTO: the oracle's closes decided; UP/DOWN/VOID: set by hand
    close_source: str
    settled_by: str  # the staff account's email, else the door it came through (beat, cli, ...)
    reason: str
    settle_at: datetime
    settled_at: datetime
    bets_count: int
    paid_out_u: int
    fee_u: int


@dataclass(frozen=True)
class RoundsBoard:
    current: RoundBoard | None  # the round bettors see (round_current's rule)
    overdue: list[str]  # codes of the overdue rounds (rounds_overdue's rule), oldest first
    last_settlement: SettlementSummary | None  # of the latest settled round (by code)


def rounds_board(*, now: datetime) -> RoundsBoard:
    """The current round with its pools, the overdue rounds and the last settlement: one statement.

    The unsettled rounds (OPEN and LOCKED: a handful, on the status index) and the latest settled
    one with its settlement and who settled it, in one query that also says which are overdue, by
    the same condition as rounds_overdue.
    """
    latest_settled = Round.objects.filter(status=Round.Status.SETTLED).order_by("-code").values("id")[:1]
    rows = list(
        Round.objects.filter(Q(status__in=[Round.Status.OPEN, Round.Status.LOCKED]) | Q(id__in=latest_settled))
        .select_related("settlement__settled_by")
        .annotate(is_overdue=ExpressionWrapper(_overdue_q(now), output_field=BooleanField()))
        .order_by("code")
    )
    unsettled = [row for row in rows if row.status != Round.Status.SETTLED]
    open_rows = [row for row in unsettled if row.status == Round.Status.OPEN]
    current = open_rows[0] if open_rows else (unsettled[-1] if unsettled else None)
    settled = next((row for row in rows if row.status == Round.Status.SETTLED), None)
    return RoundsBoard(
        current=None
        if current is None
        else RoundBoard(
            id=current.pk,
            code=current.code,
            symbol=current.symbol,
            status=current.status,
            lock_at=current.lock_at,
            settle_at=current.settle_at,
            up_pool_u=current.up_pool_u,
            down_pool_u=current.down_pool_u,
            holders=RoundConcentration(
                bettors=current.bettors,
                up_top_u=current.up_top_u,
                down_top_u=current.down_top_u,
                top_u=current.top_u,
            ),
        ),
        overdue=[row.code for row in unsettled if row.is_overdue],
        last_settlement=_settlement_summary(settled),
    )


def _settlement_summary(round_: Round | None) -> SettlementSummary | None:
    settlement = getattr(round_, "settlement", None) if round_ is not None else None
    if round_ is None or settlement is None:
        return None
    return SettlementSummary(
        code=round_.code,
        result=settlement.result,
        requested_result=settlement.requested_result,
        close_source=round_.close_source,
        settled_by=settlement.settled_by.email if settlement.settled_by else settlement.source,
        reason=settlement.reason,
        settle_at=round_.settle_at,
        settled_at=round_.settled_at or settlement.created_at,
        bets_count=settlement.bets_count,
        paid_out_u=settlement.paid_out_u,
        fee_u=settlement.fee_u,
    )


def rounds_awaiting_close(*, now: datetime) -> list[tuple[str, str, date, date]]:
    """(code, symbol, day, previous trading day) of every LOCKED round past settle_at: the closes AUTO waits for."""
    rows = Round.objects.filter(status=Round.Status.LOCKED, settle_at__lte=now).order_by("code")
    result = []
    for code, symbol in rows.values_list("code", "symbol"):
        day = round_code_parse(code=code)
        result.append((code, symbol, day, trading_day_previous(day=day)))
    return result


def round_oracle_evidence(*, round_: Round) -> dict[str, dict[str, Any] | None]:
    """{"close": ..., "reference": ...}: marketdata's latest quorum evidence for the round's two closes (or None)."""
    day = round_code_parse(code=round_.code)
    return {
        "close": close_evidence_get(symbol=round_.symbol, day=day),
        "reference": close_evidence_get(symbol=round_.symbol, day=trading_day_previous(day=day)),
    }


# --- Receipts (public settlement, a bettor's receipt) ---------------------------------------------


def _price_text(price: Any) -> str | None:
    return None if price is None else f"{price:.6f}"


def round_settlement_public(*, code: str) -> dict[str, Any]:
    """What anyone may check of a settled round: pools, fee, dust, the evidence, the receipts' root.

    Refused with `round_not_settled` (409) until it is settled. Names nobody: the receipts' leaves
    carry per-round pseudonyms only (rounds.merkle).
    """
    round_ = round_get(code=code)
    settlement = RoundSettlement.objects.filter(round=round_).first()
    if settlement is None:
        raise InvalidTransition(f"Round {round_.code} is {round_.status}: not settled yet.", code="round_not_settled")
    manual = settlement.requested_result in ("UP", "DOWN", "VOID")
    # The recorded closes and, when the price sources decided, the quorum's evidence: each source's
    # price, timestamp and payload hash, accepted or rejected with the reason (marketdata's record).
    evidence: dict[str, Any] = {
        "kind": "manual" if manual else "oracle",
        "requested_result": settlement.requested_result,
        "close": {"price": _price_text(round_.close_price), "source": round_.close_source},
        "reference": {"price": _price_text(round_.reference_price), "source": round_.reference_source},
        "reason": round_.settle_reason,
        "oracle": None if manual else round_oracle_evidence(round_=round_),
    }
    return {
        "round": round_.code,
        "symbol": round_.symbol,
        "rule_version": round_.rule_version,
        "result": settlement.result,
        "up_pool_u": settlement.up_pool_u,
        "down_pool_u": settlement.down_pool_u,
        "fee_bps": round_.fee_bps,
        "fee_u": settlement.fee_u,
        "dust_u": settlement.dust_u,
        "paid_out_u": settlement.paid_out_u,
        "bets_count": settlement.bets_count,
        "winners_count": settlement.winners_count,
        "merkle_root": settlement.merkle_root,
        "settlement_digest": settlement.digest,
        "commit_hash": round_.commit_hash,
        "prev_commit_hash": round_.prev_commit_hash,
        "prev_settlement_digest": round_.prev_settlement_digest,
        "settled_at": settlement.created_at,
        "evidence": evidence,
    }


def bet_receipt_get(*, user: Any, bet_id: Any) -> dict[str, Any]:
    """The owner's receipt of a settled bet: its leaf, the Merkle path to the published root, the settlement.

    Another user's bet is `unknown_bet` (404) like a missing one. One streamed pass over the
    round's bets (the path needs the siblings); `rounds.verify_receipt` checks the answer alone.
    """
    bet = bet_get(user=user, bet_id=bet_id)
    published = round_settlement_public(code=bet.round.code)
    if not published["merkle_root"]:
        raise InvalidTransition(
            f"Round {bet.round.code} was settled before receipts existed (rule_version 1).", code="no_receipts"
        )
    rows = bet_receipt_rows_iter(round_id=bet.round_id)
    leaves: list[bytes] = []
    index, pseudonym = -1, ""
    for row, leaf in leaves_iter(round_code=bet.round.code, rows=rows):
        if row[0] == bet.pk:
            index = len(leaves)
        leaves.append(leaf)
    pseudonym = Pseudonyms(bet.round.code)(bet.user_id)
    return {
        "bet": {
            "id": bet.pk,
            "pseudonym": pseudonym,
            "side": bet.side,
            "stake_u": bet.stake_u,
            "payout_u": bet.payout_u,
            "status": bet.status,
        },
        "leaf": leaves[index].hex(),
        "path": merkle_path(leaves, index),
        "settlement": {
            key: published[key]
            for key in ("round", "result", "up_pool_u", "down_pool_u", "fee_bps", "fee_u", "merkle_root")
        },
    }
