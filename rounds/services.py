"""Round lifecycle: open -> lock -> settle. The only writers of rounds and settlements."""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import signature
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals.exceptions import FourEyesRequired
from approvals.models import ApprovalRequest
from approvals.services import approval_grant, approval_reason, approval_request
from audit.events import AuditAction
from audit.services import audit_record
from betting.selectors import bet_payouts_by_user_sql, bet_receipt_rows_text
from betting.settlement import bets_settle
from common.errors import ApplicationError, permission_require
from common.types import User
from ledger.selectors import HOUSE_ACCOUNT, account_balance_u, account_code_round_pool
from ledger.services import Line, account_ensure_round_pool, ledger_post_from_sql
from marketdata.selectors import (
    close_check_last_at,
    market_close_at,
    market_timezone,
    market_today,
    trading_day_get,
    trading_day_previous,
)
from marketdata.services import official_close_resolve
from ops.alerts import alert_raise
from ops.metrics import settlement_observed
from ops.rules import oracle_no_quorum_finding
from rounds.exceptions import (
    BettingClosed,
    InvalidResult,
    InvalidTransition,
    MarketClosed,
    NoCurrentRound,
    NoOfficialClose,
    PoolMismatch,
    ReasonRequired,
    RoundAlreadySettled,
    RoundNotOpen,
    UnknownRound,
)
from rounds.hashing import commit_hash_compute, settlement_digest_compute
from rounds.merkle import MerkleRoot, payout_lines_into_tree
from rounds.models import Round, RoundSettlement
from rounds.selectors import (
    SettlementPlan,
    result_validate,
    round_code_parse,
    round_current,
    round_get,
    round_summary_changed,
    round_transition_refusal,
    rounds_open,
    rounds_overdue,
    settlement_plan_get,
)

logger = logging.getLogger(__name__)

RULE_VERSION = 2  # 2: receipts (Merkle root in the digest, previous digest in the chain)
LOCK_BEFORE_CLOSE = timedelta(seconds=1)
SETTLE_AFTER_CLOSE = timedelta(minutes=5)


def _chain_lock() -> None:
    """Serialise appends to the commit chain, so two opens never fork it.

    PostgreSQL: a transaction-level advisory lock (a row lock on "the latest round"
    would let the second opener re-read the stale tail). SQLite: IMMEDIATE
    transactions already serialise writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x524F554E44])  # "ROUND"


def round_open(
    *, code: str, force: bool = False, acting_user: User | None = None, source: str = "system", reason: str = ""
) -> tuple[Round, bool]:
    """Open the round of trading day `code` with its pool account: (round, created).

    Idempotent: an existing round is returned with created=False.

    lock_at is one second before the close (15:59:59 ET, 12:59:59 on early-close
    days), settle_at five minutes after it. Weekends and market holidays are
    refused unless `force` (then the regular 16:00 close is used).
    """
    day = round_code_parse(code=code)
    code = day.strftime("%Y%m%d")
    existing = Round.objects.filter(code=code).first()
    if existing is not None:
        return existing, False
    close_at = market_close_at(day=day)
    if close_at is None:
        if not force:
            why = trading_day_get(day=day).reason
            raise MarketClosed(f"The market is closed on {day:%Y-%m-%d} ({why}); use --force to open anyway.")
        close_at = datetime.combine(day, datetime.min.time(), tzinfo=market_timezone()).replace(hour=16)
    with transaction.atomic():
        _chain_lock()
        existing = Round.objects.filter(code=code).first()
        if existing is not None:
            return existing, False
        tail = Round.objects.order_by("-id").only("commit_hash", "settlement_digest").first()
        prev_commit_hash = tail.commit_hash if tail is not None else ""
        prev_settlement_digest = tail.settlement_digest if tail is not None else ""
        round_ = Round(
            code=code,
            symbol=settings.MARKET_SYMBOL,
            lock_at=close_at - LOCK_BEFORE_CLOSE,
            settle_at=close_at + SETTLE_AFTER_CLOSE,
            fee_bps=settings.FEE_BPS,
            rule_version=RULE_VERSION,
            prev_commit_hash=prev_commit_hash,
            prev_settlement_digest=prev_settlement_digest,
        )
        round_.commit_hash = round_commit_hash(round_=round_)
        round_.save()
        _summary_changed()
        account_ensure_round_pool(round_code=code)
        audit_record(
            action=AuditAction.ROUND_OPEN,
            source=source,
            actor=acting_user,
            object_type="round",
            object_id=code,
            reason=reason
            or ("forced open on a market holiday" if force and not trading_day_get(day=day).is_open else ""),
            after={
                "lock_at": round_.lock_at.isoformat(),
                "settle_at": round_.settle_at.isoformat(),
                "fee_bps": round_.fee_bps,
                "commit_hash": round_.commit_hash,
                "force": force,
            },
        )
    logger.info("opened round %s (lock_at %s)", code, round_.lock_at.isoformat(), extra={"round": code})
    return round_, True


def _summary_changed() -> None:
    """What GET /rounds/current shows changed in this transaction: drop the cached summary now
    (this process's next read) and again when the change commits (every process's)."""
    round_summary_changed()
    transaction.on_commit(round_summary_changed)


def round_commit_hash(*, round_: Round) -> str:
    return commit_hash_compute(
        code=round_.code,
        symbol=round_.symbol,
        lock_at=round_.lock_at,
        settle_at=round_.settle_at,
        fee_bps=round_.fee_bps,
        rule_version=round_.rule_version,
        prev_commit_hash=round_.prev_commit_hash,
        prev_settlement_digest=round_.prev_settlement_digest,
    )


def _permission_require(acting_user: User | None, perm: str, what: str) -> None:
    # acting_user None = the system (beat, CLI run by an operator with shell access).
    if acting_user is not None:
        permission_require(acting_user, perm, detail=f"You need the '{perm}' permission to {what}.")


def _locked_round(code: str) -> Round:
    round_code_parse(code=code)
    round_ = Round.objects.select_for_update().filter(code=str(code).strip()).first()
    if round_ is None:
        raise UnknownRound(f"No round {code}.")
    return round_


def round_lock(*, code: str, acting_user: User | None = None, reason: str = "", source: str = "system") -> Round:
    """OPEN -> LOCKED. Takes the round row lock that round_pool_raise also needs,
    so a bet racing the lock is either in the pool or refused."""
    _permission_require(acting_user, "rounds.lock_round", "lock a round")
    with transaction.atomic():
        round_ = _locked_round(code)
        refusal = round_transition_refusal(round_=round_, action="lock")
        if refusal is not None:
            raise refusal
        round_.status = Round.Status.LOCKED
        round_.locked_at = timezone.now()
        round_.locked_by = acting_user if getattr(acting_user, "pk", None) else None
        round_.lock_reason = reason or ""
        round_.save(update_fields=["status", "locked_at", "locked_by", "lock_reason"])
        _summary_changed()
        audit_record(
            action=AuditAction.ROUND_LOCK,
            source=source,
            actor=acting_user,
            object_type="round",
            object_id=round_.code,
            reason=reason,
            before={"status": Round.Status.OPEN},
            after={"status": Round.Status.LOCKED, "up_pool_u": round_.up_pool_u, "down_pool_u": round_.down_pool_u},
        )
    logger.info("locked round %s (%s)", round_.code, source, extra={"round": round_.code})
    return round_


_POOL_COLUMN: dict[str, str] = {Round.Result.UP: "up_pool_u", Round.Result.DOWN: "down_pool_u"}
_TOP_COLUMN: dict[str, str] = {Round.Result.UP: "up_top_u", Round.Result.DOWN: "down_top_u"}


def round_bet_admit(*, round_code: str | None, now: datetime) -> Round:
    """The round a bet goes to, if it takes bets now (OPEN and now < lock_at): bet_place's first statement.

    A SELECT … FOR KEY SHARE of the round row: every bet of the round holds it at once (no bet
    waits on another here), and it makes round_lock and round_settle (FOR UPDATE) wait for the
    bets in flight, so a bet racing the lock is either wholly in or refused, and a settlement
    never starts while a bet of its round still runs. The pool is raised by round_pool_raise at
    the end of the bet's transaction. Without a code: the current round, the first of rounds_open().

    Returns the round with id and code loaded (the rest loads on access, as with `.only()`).
    Refused (the refusal path may spend a query on a precise answer): unknown_round,
    no_current_round, round_not_open, betting_closed.
    """
    sql, params = round_bet_admit_sql(round_code=round_code, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return round_bet_admitted(row=row, round_code=round_code, now=now)


def round_bet_admit_sql(*, round_code: str | None, now: datetime) -> tuple[str, list[Any]]:
    """round_bet_admit's SELECT … FOR KEY SHARE as (sql, params), for a caller that runs it as the first part
    of its own statement (bet_place's bet INSERT on PostgreSQL); it yields (id, code) or no row, which
    goes to round_bet_admitted."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("round_bet_admit must run inside the transaction of the bet it admits")
    if round_code is None:
        current_sql, params = rounds_open().values("code")[:1].query.sql_with_params()
        target = f"code = ({current_sql})"
    else:
        target, params = "code = %s", (round_code,)
    share = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""  # SQLite: one writer at a time anyway
    sql = f"SELECT id, code FROM rounds WHERE {target} AND status = %s AND lock_at > %s{share}"
    return sql, [*params, Round.Status.OPEN.value, connection.ops.adapt_datetimefield_value(now)]


def round_bet_admitted(*, row: Sequence[Any] | None, round_code: str | None, now: datetime) -> Round:
    """The admitted round (id and code loaded) from round_bet_admit_sql's row, or the refusal (no row)."""
    if row is None:
        raise _pool_refusal(round_code=round_code, now=now)
    return Round.from_db(connection.alias, ["id", "code"], tuple(row))


def round_pool_raise(
    *,
    round_code: str | None,
    side: str,
    stake_u: int,
    now: datetime,
    bettor_new: bool = False,
    bettor_side_u: int = 0,
    bettor_total_u: int = 0,
) -> Round:
    """Take `stake_u` into the round's `side` pool iff the round takes bets: OPEN and now < lock_at.

    With it, who holds the pools: `bettor_new` (the bettor's first stake in the round) adds one to
    `bettors`; `bettor_side_u` and `bettor_total_u` (the bettor's stakes on that side and in all, this
    one included: betting's running totals) raise the largest-stake columns if they pass them. Stakes
    only grow while the round is OPEN, so the running maxima are exact, read in O(1) (rounds_board).

    bet_place's last statement (after round_bet_admit, first): the round row is hot, so it is
    held for this one round trip and the commit. One conditional UPDATE both checks the state and
    raises the pool, and so takes the round row lock that round_lock and round_settle take too:
    a bet racing the lock is either wholly in or refused (it must run inside the bet's transaction).
    bet_place has the ledger run it as the tail of the ledger batch's own statement
    (round_pool_raise_sql, then round_pool_raised); this runs it alone. Without a code it targets
    the current round, the first of rounds_open() (as round_current sees it).

    Returns the round with id, code and both pools (after this stake) loaded (the rest loads on access,
    as with `.only()`): bet_place checks the pool limits (risk.checks) against those pools.
    Refused (the refusal path may spend a query on a precise answer): unknown_round,
    no_current_round, round_not_open, betting_closed; nothing was changed.
    """
    sql, params = round_pool_raise_sql(
        round_code=round_code,
        side=side,
        stake_u=stake_u,
        now=now,
        bettor_new=bettor_new,
        bettor_side_u=bettor_side_u,
        bettor_total_u=bettor_total_u,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.format(after=""), params)
        row = cursor.fetchone()
    return round_pool_raised(row=row, round_code=round_code, now=now)


def round_pool_raise_sql(
    *,
    round_code: str | None,
    side: str,
    stake_u: int,
    now: datetime,
    bettor_new: bool,
    bettor_side_u: int,
    bettor_total_u: int,
) -> tuple[str, list[Any]]:
    """round_pool_raise's conditional UPDATE as (sql, params), for a caller that runs it in its own last
    statement (the ledger batch of a bet: ledger.services.ledger_post's `then`). The SQL holds one
    `{after}` in its WHERE clause, where that statement adds the condition that orders it last.
    Its row (or none: refused) goes to round_pool_raised."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("round_pool_raise must run inside the transaction of the bet it takes")
    column, top = _POOL_COLUMN[side], _TOP_COLUMN[side]
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite's two-argument max()
    if round_code is None:
        current_sql, params = rounds_open().values("code")[:1].query.sql_with_params()
        target = f"code = ({current_sql})"
    else:
        target, params = "code = %s", (round_code,)
    sql = (
        f"UPDATE rounds SET {column} = {column} + %s, bettors = bettors + %s, "
        f"{top} = {greatest}({top}, %s), top_u = {greatest}(top_u, %s) "
        f"WHERE {target} AND status = %s AND lock_at > %s{{after}} RETURNING id, code, up_pool_u, down_pool_u"
    )
    return sql, [
        stake_u,
        int(bettor_new),
        bettor_side_u,
        bettor_total_u,
        *params,
        Round.Status.OPEN.value,
        connection.ops.adapt_datetimefield_value(now),
    ]


def round_pool_raised(*, row: Sequence[Any] | None, round_code: str | None, now: datetime) -> Round:
    """What round_pool_raise makes of its UPDATE's row: the round with its pools, or the refusal (no row)."""
    if row is None:
        raise _pool_refusal(round_code=round_code, now=now)
    transaction.on_commit(round_summary_changed)  # the pool shown by GET /rounds/current
    return Round.from_db(connection.alias, ["id", "code", "up_pool_u", "down_pool_u"], tuple(row))


def _pool_refusal(*, round_code: str | None, now: datetime) -> ApplicationError:
    """Why the conditional UPDATE found no row."""
    round_ = round_get(code=round_code) if round_code is not None else round_current()  # raises unknown_round
    if round_ is None:
        return NoCurrentRound("No round is open for betting right now.")
    if round_.status != Round.Status.OPEN:
        return RoundNotOpen(f"Round {round_.code} is {round_.status}; bets are accepted only while it is OPEN.")
    return BettingClosed(f"Betting on round {round_.code} closed at {round_.lock_at.isoformat()} (lock time).")


MANUAL_RESULTS = ("UP", "DOWN")
# A VOID asked from these is a person's emergency refund (ops.rules.alert_emergency_void raises a P1).
EMERGENCY_SOURCES = ("admin", "api", "cli")
# What round_settle reports to its `progress` callback, in order (the settle_round command shows a bar).
SETTLE_PHASES = ("pools checked", "bets marked", "payouts posted", "digest computed", "settlement recorded")
SettleProgress = Callable[[str, int], None]  # (phase just done, the round's number of bets)


def round_settle(
    *,
    code: str,
    result: str,
    reason: str = "",
    acting_user: User | None = None,
    source: str = "system",
    progress: SettleProgress | None = None,
) -> RoundSettlement:
    """LOCKED -> SETTLED: pay the round in one transaction, set-based, exactly once.

    The round row lock and the unique RoundSettlement make it exclusive: a racing
    second settlement waits, then finds the round SETTLED and is refused. Every
    write (bets, ledger batch, settlement, round, audit) is in one transaction, so a
    crash leaves the round LOCKED with nothing paid. AUTO without an official close
    raises NoOfficialClose and changes nothing.

    Four eyes: a person may settle AUTO (the oracle decides) or VOID (the emergency refund, which
    pays nobody more than they staked: one operator, audited and raised as a P1 alert), but a
    result chosen by hand (UP / DOWN) is a request another person approves
    (`round_result_request`, `round_result_approve`): refused here with `four_eyes_required`.
    Without a person (the beat, code acting as the system) nothing is asked.
    """
    requested = result_validate(result=result)
    if requested == "VOID":
        _permission_require(acting_user, "rounds.void_round", "void a round")
    else:
        _permission_require(acting_user, "rounds.settle_round", "settle a round")
    if requested in MANUAL_RESULTS and getattr(acting_user, "pk", None):
        raise FourEyesRequired(
            f"A manual {requested} result needs a second person: request it (settle_round --result {requested}, "
            "or the admin action), then another operator approves it (settle_round --approve REQUEST_ID)."
        )
    if source in ("admin", "api") and not (reason or "").strip():
        raise ReasonRequired("A manual settlement needs a reason.")
    if requested == "AUTO":
        round_auto_closes_resolve(code)
    return _settle_observed(code, requested, reason or "", acting_user, source, progress)


def _settle_observed(
    code: str,
    requested: str,
    reason: str,
    acting_user: User | None,
    source: str,
    progress: SettleProgress | None = None,
) -> RoundSettlement:
    """Settle in one transaction, time it, and have an emergency (manual) void alerted once it commits."""
    started = time.monotonic()
    try:
        with transaction.atomic():
            settlement = _settle(code, requested, reason, acting_user, source, progress or _no_progress)
            transaction.on_commit(lambda: settlement_observed(time.monotonic() - started))
            if requested == "VOID" and source in EMERGENCY_SOURCES:
                transaction.on_commit(_alerts_soon)  # ops.rules.alert_emergency_void raises the P1
            return settlement
    except IntegrityError as exc:
        # Only reachable if something bypassed the row lock: the unique settlement refused the twin.
        if RoundSettlement.objects.filter(round__code=str(code).strip()).exists():
            raise RoundAlreadySettled(f"Round {code} is already settled; nothing was changed.") from exc
        raise


def round_auto_closes_resolve(code: str) -> None:
    """Before AUTO's transaction: have marketdata make sure the round's two closes are known.

    The sources are asked with no lock held. When they were asked and found no quorum, the round
    stays LOCKED, a P1 alert names the reason (ops' alert service), and NoOfficialClose says it;
    the manual path (set_close, or UP/DOWN/VOID with a reason) is unchanged.
    """
    round_ = round_get(code=code)
    if round_.status != Round.Status.LOCKED:
        return  # _settle refuses it with the precise reason
    day = round_code_parse(code=round_.code)
    failures = []
    for day_ in (day, trading_day_previous(day=day)):
        resolution = official_close_resolve(symbol=round_.symbol, day=day_)
        if resolution.price is None and resolution.checked:
            failures.append(f"{day_:%Y-%m-%d}: {resolution.reason}")
    if failures:
        reason = "; ".join(failures)
        alert_raise(finding=oracle_no_quorum_finding(code=round_.code, reason=reason))
        raise NoOfficialClose(
            f"The price sources gave no accepted close ({reason}). Round {round_.code} stays LOCKED: enter the close "
            "with set_close (or the admin) and settle AUTO, or settle UP/DOWN/VOID by hand with a reason."
        )


def _alerts_soon() -> None:
    # By task name: rounds must not import ops.tasks (ops reads rounds). A broker hiccup must not undo
    # the settlement; the beat's alert evaluation catches up.
    with contextlib.suppress(Exception):
        signature("ops.evaluate_alerts").delay()


def round_result_request(
    *, code: str, result: str, reason: str, acting_user: User | None, source: str
) -> tuple[ApprovalRequest, bool]:
    """Ask for a manual UP / DOWN result of a LOCKED round: a four-eyes request, nothing settled yet.

    The same request again answers the first; another result for a round that waits already is
    refused (`approval_pending`). Another operator approves it with `round_result_approve`.
    """
    _permission_require(acting_user, "rounds.settle_round", "settle a round")
    requested = result_validate(result=result)
    if requested not in MANUAL_RESULTS:
        raise InvalidResult(
            f"Only a manual UP or DOWN result waits for a second person; {requested} is settled at once."
        )
    round_ = round_get(code=code)
    refusal = round_transition_refusal(round_=round_, action="settle")
    if refusal is not None:
        raise refusal
    return approval_request(
        kind=ApprovalRequest.Kind.ROUND_RESULT,
        target=round_.code,
        payload={"result": requested},
        reason=reason,
        actor=acting_user,
        source=source,
    )


def round_result_approve(
    *, request_id: int | str, acting_user: User | None, source: str, reason: str = ""
) -> RoundSettlement | None:
    """A second operator approves a manual result: the round settles in the same transaction.

    Returns the settlement, or None while the request still needs more approvals. A refused
    settlement (the round is no longer LOCKED, a pool mismatch) undoes the approval too.
    """
    with transaction.atomic():
        request = approval_grant(
            request_id=request_id,
            kind=ApprovalRequest.Kind.ROUND_RESULT,
            permission="rounds.settle_round",
            actor=acting_user,
            source=source,
            reason=reason,
        )
        if request.status != ApprovalRequest.Status.APPROVED:
            return None
        why = approval_reason(request, acting_user)
        return _settle_observed(request.target, request.payload["result"], why, acting_user, source)


def _no_progress(phase: str, bets_count: int) -> None:
    return None


def _settle(
    code: str, requested: str, reason: str, acting_user: User | None, source: str, progress: SettleProgress
) -> RoundSettlement:
    round_ = _locked_round(code)
    refusal = round_transition_refusal(round_=round_, action="settle")
    if refusal is not None:
        raise refusal
    if RoundSettlement.objects.filter(round=round_).exists():
        raise RoundAlreadySettled(f"Round {round_.code} is already settled ({round_.result}); nothing was changed.")
    plan = settlement_plan_get(round_=round_, result=requested)
    pool_code = account_code_round_pool(round_code=round_.code)
    pool_balance_u = account_balance_u(code=pool_code)
    if pool_balance_u != plan.pool_u:
        raise PoolMismatch(
            f"Round {round_.code}: bets total {plan.pool_u} u but {pool_code} holds {pool_balance_u} u; "
            "nothing was settled. Run ledger_audit and investigate."
        )
    progress(SETTLE_PHASES[0], plan.bets_count)
    _settlement_work_mem()
    settlement = RoundSettlement.objects.create(
        round=round_,
        result=plan.result,
        requested_result=requested,
        up_pool_u=plan.up_pool_u,
        down_pool_u=plan.down_pool_u,
        fee_u=plan.fee_u,
        dust_u=0,
        paid_out_u=0,
        bets_count=plan.bets_count,
        winners_count=0,
        digest="",
        source=source,
        reason=reason,
        settled_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    # The bets are betting's: its door marks them WON / LOST / REFUNDED, set-based, in this transaction.
    paid_out_u, paid_count = bets_settle(
        round_id=round_.pk,
        result=plan.result,
        distributable_u=plan.distributable_u,
        winning_pool_u=plan.winning_pool_u,
    )
    progress(SETTLE_PHASES[1], plan.bets_count)
    house_u = plan.pool_u - paid_out_u
    dust_u = house_u - plan.fee_u
    if dust_u < 0 or (plan.result != Round.Result.VOID and dust_u >= max(paid_count, 1)):
        raise PoolMismatch(f"Round {round_.code}: payouts {paid_out_u} u do not fit the pool {plan.pool_u} u.")
    close, reference = plan.close, plan.reference
    round_.close_price = close.price if close else None
    round_.close_source = close.source if close else ""
    round_.reference_price = reference.price if reference else None
    round_.reference_source = reference.source if reference else ""
    if plan.bets_count <= SETTLEMENT_ROWS_IN_MEMORY_MAX:
        # The bets' rows are read now, then hashed (the digest, the receipts' tree) in a thread while this
        # connection posts the ledger batch: the database and Python work at the same time.
        rows = list(bet_receipt_rows_text(round_id=round_.pk))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="settlement-digest") as pool:
            digest_job = pool.submit(_settlement_digest, round_=round_, plan=plan, rows=rows)
            del rows  # the thread's now
            batch_id = _settlement_post(
                round_=round_, plan=plan, pool_code=pool_code, house_u=house_u, acting_user=acting_user
            )
            progress(SETTLE_PHASES[2], plan.bets_count)
            digest, merkle_root = digest_job.result()
    else:  # flat memory: the rows streamed through the hashing after the batch, on this thread
        batch_id = _settlement_post(
            round_=round_, plan=plan, pool_code=pool_code, house_u=house_u, acting_user=acting_user
        )
        progress(SETTLE_PHASES[2], plan.bets_count)
        digest, merkle_root = _settlement_digest(
            round_=round_, plan=plan, rows=bet_receipt_rows_text(round_id=round_.pk)
        )
    progress(SETTLE_PHASES[3], plan.bets_count)
    winners_count = paid_count if plan.result != Round.Result.VOID else 0
    RoundSettlement.objects.filter(pk=settlement.pk).update(
        dust_u=dust_u,
        paid_out_u=paid_out_u,
        winners_count=winners_count,
        ledger_batch_id=batch_id,
        digest=digest,
        merkle_root=merkle_root,
    )
    round_.status = Round.Status.SETTLED
    round_.result = plan.result
    round_.settlement_digest = digest
    round_.settled_at = timezone.now()
    round_.settled_by = acting_user if getattr(acting_user, "pk", None) else None
    round_.settle_reason = reason or plan.why
    round_.save(
        update_fields=[
            "status",
            "result",
            "close_price",
            "close_source",
            "reference_price",
            "reference_source",
            "settlement_digest",
            "settled_at",
            "settled_by",
            "settle_reason",
        ]
    )
    _summary_changed()
    audit_record(
        action=AuditAction.ROUND_VOID if plan.result == Round.Result.VOID else AuditAction.ROUND_SETTLE,
        source=source,
        actor=acting_user,
        object_type="round",
        object_id=round_.code,
        reason=reason or plan.why,
        before={"status": Round.Status.LOCKED},
        after={
            "status": Round.Status.SETTLED,
            "requested_result": requested,
            "result": plan.result,
            "why": plan.why,
            "up_pool_u": plan.up_pool_u,
            "down_pool_u": plan.down_pool_u,
            "fee_u": plan.fee_u,
            "dust_u": dust_u,
            "paid_out_u": paid_out_u,
            "winners_count": winners_count,
            "bets_count": plan.bets_count,
            "ledger_batch": batch_id,
            "settlement_digest": digest,
            "merkle_root": merkle_root,
        },
    )
    settlement.refresh_from_db()
    progress(SETTLE_PHASES[4], plan.bets_count)
    logger.info(
        "settlement of round %s %s: paid %s u, fee %s u, dust %s u",
        round_.code,
        plan.result,
        paid_out_u,
        plan.fee_u,
        dust_u,
        extra={"round": round_.code},
    )
    return settlement


# PostgreSQL's work_mem for the rest of a settlement's transaction (set_config(…, true) is SET LOCAL):
# the sorts and hashes over a million bets and their payees in memory, not in temporary files (4 MB,
# the server's default, spills them). bench/settle_bench.py gives its bare SQL baseline the same.
SETTLEMENT_WORK_MEM = "256MB"
# Up to this many bets the settlement holds the rows in memory (~60 MB a million, and the pseudonyms) to
# hash them behind the ledger batch; a larger round streams them after it (flat memory, slower).
SETTLEMENT_ROWS_IN_MEMORY_MAX = 1_500_000  # 226 MB peak in settle_bench at 1 M; about 270 MB expected here


def _settlement_work_mem() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [SETTLEMENT_WORK_MEM])


def _settlement_post(
    *, round_: Round, plan: SettlementPlan, pool_code: str, house_u: int, acting_user: User | None
) -> int | None:
    """The settlement's ledger batch (None when the pool is empty): winners' cash, one line per user; the
    pool emptied; fee + dust to the house."""
    if plan.pool_u <= 0:
        return None
    payouts_sql, payouts_params = bet_payouts_by_user_sql(round_id=round_.pk)
    posted = ledger_post_from_sql(
        user_cash_sql=payouts_sql,
        params=payouts_params,
        lines=[Line(pool_code, -plan.pool_u), Line(HOUSE_ACCOUNT, house_u)],
        # Lines are sums of stakes each checked at bet_place, so MAX_AMOUNT_U does not bound
        # them (one winner of a large round collects more): the pool does.
        max_line_u=plan.pool_u,
        ref_type="settlement",
        ref_id=round_.code,
        idempotency_key=f"settlement:{round_.code}",
        memo=f"{plan.result}: {plan.why}",
        acting_user=acting_user,
    )
    if not posted.created:
        raise RoundAlreadySettled(f"Round {round_.code} already has a settlement batch; nothing was changed.")
    return posted.batch.pk


def _settlement_digest(*, round_: Round, plan: SettlementPlan, rows: Iterable[bytes]) -> tuple[str, str]:
    """(digest, receipts' Merkle root, "" before rule_version 2) from the bets' rows (bet_receipt_rows_text).

    Given the rows in a list it is computation only, no database: it may run in another thread. One
    pass over the rows feeds the digest and the receipts' tree.
    """
    receipts = MerkleRoot() if round_.rule_version >= 2 else None
    digest = settlement_digest_compute(
        commit_hash=round_.commit_hash,
        result=plan.result,
        close_price=round_.close_price,
        close_source=round_.close_source,
        reference_price=round_.reference_price,
        reference_source=round_.reference_source,
        up_pool_u=plan.up_pool_u,
        down_pool_u=plan.down_pool_u,
        fee_u=plan.fee_u,
        payout_lines=payout_lines_into_tree(receipts, round_code=round_.code, chunks=rows),
        merkle_root=(lambda: receipts.root) if receipts is not None else None,
    )
    return digest, receipts.root if receipts is not None else ""


def round_mark_overdue(*, code: str, now: datetime | None = None, source: str = "beat") -> Round:
    """The oracle had no close within the grace period: flag it for the operators (never auto-void)."""
    with transaction.atomic():
        round_ = _locked_round(code)
        if round_.status != Round.Status.LOCKED or round_.overdue_since is not None:
            return round_
        round_.overdue_since = now or timezone.now()
        round_.save(update_fields=["overdue_since"])
        audit_record(
            action="round.overdue",
            source=source,
            object_type="round",
            object_id=round_.code,
            reason="no official close within the settlement grace period; settle by hand",
            after={"overdue_since": round_.overdue_since.isoformat(), "settle_at": round_.settle_at.isoformat()},
        )
    logger.warning("round %s is overdue for settlement: no official close", round_.code, extra={"round": round_.code})
    return round_


def _overdue_retry_due(*, code: str, symbol: str, now: datetime) -> bool:
    """An overdue round is retried too, until someone settles it, but its sources are asked at most
    every ORACLE_OVERDUE_RETRY_SECONDS (vendors ration their answers)."""
    last = close_check_last_at(symbol=symbol, day=round_code_parse(code=code))
    return last is None or (now - last).total_seconds() >= settings.ORACLE_OVERDUE_RETRY_SECONDS


@dataclass
class TickReport:
    opened: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    waiting_for_close: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    still_overdue: list[str] = field(default_factory=list)  # marked before, retried, still no close
    errors: list[str] = field(default_factory=list)


def round_lifecycle_tick(*, now: datetime | None = None) -> TickReport:
    """What is due now, from the database and the calendar: the beat's whole job, every 30 s.

    Opens today's round on a trading day (from midnight ET, so it is open well before
    09:00 and again after downtime), locks every OPEN round past lock_at, settles
    every LOCKED round past settle_at with AUTO, retrying each tick until the grace
    period is over, then marks it overdue for a human (never voids on its own).
    Each step is a service that locks the row and re-checks the state, so a second
    tick running at the same time, a retry or an operator racing it changes nothing twice.
    """
    now = now or timezone.now()
    report = TickReport()
    today = market_today(now=now)
    close_at = market_close_at(day=today)
    code = today.strftime("%Y%m%d")
    if close_at is not None and now < close_at - LOCK_BEFORE_CLOSE and not Round.objects.filter(code=code).exists():
        try:
            round_open(code=code, source="beat", reason="daily round opened by the scheduler")
            report.opened.append(code)
        except ApplicationError as exc:
            report.errors.append(f"open {code}: {exc.detail}")
    for code in (
        Round.objects.filter(status=Round.Status.OPEN, lock_at__lte=now).order_by("code").values_list("code", flat=True)
    ):
        try:
            round_lock(code=code, source="beat", reason="lock_at passed")
            report.locked.append(code)
        except InvalidTransition:
            pass  # someone (an operator, a twin tick) locked it first
    overdue = {row.code for row in rounds_overdue(now=now)}  # the one definition (settle_at + grace)
    due = Round.objects.filter(status=Round.Status.LOCKED, settle_at__lte=now)
    for code, symbol, marked in due.order_by("code").values_list("code", "symbol", "overdue_since"):
        if marked is not None and not _overdue_retry_due(code=code, symbol=symbol, now=now):
            continue
        try:
            round_settle(code=code, result="AUTO", source="beat", reason="automatic settlement from the official close")
            report.settled.append(code)
        except InvalidTransition:
            pass  # settled by a twin tick or an operator meanwhile
        except NoOfficialClose:
            if marked is not None:
                report.still_overdue.append(code)
            elif code in overdue:
                round_mark_overdue(code=code, now=now)
                report.overdue.append(code)
            else:
                report.waiting_for_close.append(code)
        except ApplicationError as exc:
            logger.error("settlement of round %s failed: %s [%s]", code, exc.detail, exc.code, extra={"round": code})
            report.errors.append(f"settle {code}: {exc.detail}")
    return report
