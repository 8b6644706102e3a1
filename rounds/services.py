"""Round lifecycle: open -> lock -> settle. The only writers of rounds and settlements."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from ledger.models import Account
from ledger.services import account_ensure
from marketdata.selectors import market_close_at, market_timezone, trading_day_get
from ops.services import audit_record
from rounds.exceptions import MarketClosed
from rounds.hashing import commit_hash_compute
from rounds.models import Round
from rounds.selectors import round_code_parse

logger = logging.getLogger(__name__)

RULE_VERSION = 1
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


def round_open(*, code: str, force: bool = False, acting_user=None, source: str = "system", reason: str = "") -> Round:
    """Open the round of trading day `code` with its pool account. Idempotent: an existing round is returned.

    lock_at is one second before the close (15:59:59 ET, 12:59:59 on early-close
    days), settle_at five minutes after it. Weekends and market holidays are
    refused unless `force` (then the regular 16:00 close is used).
    """
    day = round_code_parse(code=code)
    code = day.strftime("%Y%m%d")
    existing = Round.objects.filter(code=code).first()
    if existing is not None:
        return existing
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
            return existing
        tail = Round.objects.order_by("-id").only("commit_hash").first()
        prev_commit_hash = tail.commit_hash if tail is not None else ""
        round_ = Round(
            code=code,
            symbol=settings.MARKET_SYMBOL,
            lock_at=close_at - LOCK_BEFORE_CLOSE,
            settle_at=close_at + SETTLE_AFTER_CLOSE,
            fee_bps=settings.FEE_BPS,
            rule_version=RULE_VERSION,
            prev_commit_hash=prev_commit_hash,
        )
        round_.commit_hash = round_commit_hash(round_=round_)
        round_.save()
        account_ensure(code=Account.round_pool_code(code), kind=Account.Kind.ROUND_POOL)
        audit_record(
            action="round.open",
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
    logger.info("opened round %s (lock_at %s)", code, round_.lock_at.isoformat())
    return round_


def round_commit_hash(*, round_: Round) -> str:
    return commit_hash_compute(
        code=round_.code,
        symbol=round_.symbol,
        lock_at=round_.lock_at,
        settle_at=round_.settle_at,
        fee_bps=round_.fee_bps,
        rule_version=round_.rule_version,
        prev_commit_hash=round_.prev_commit_hash,
    )
