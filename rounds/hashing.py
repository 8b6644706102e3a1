"""The round commit chain and the settlement digest: canonical bytes, SHA-256.

Anyone holding the rows can recompute them (`verify_round`), so both formats are
part of the contract: change them only with a new `rule_version`.
"""

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _price(price: Decimal | None) -> str | None:
    # Normalised so 410.5 and 410.500000 hash alike (the column stores 6 places).
    return None if price is None else f"{Decimal(price):.6f}"


def commit_hash_compute(
    *,
    code: str,
    symbol: str,
    lock_at: datetime,
    settle_at: datetime,
    fee_bps: int,
    rule_version: int,
    prev_commit_hash: str,
    prev_settlement_digest: str = "",
) -> str:
    """From rule_version 2 the chain also carries the previous round's settlement digest (and so its
    receipts' Merkle root) as it stood when this round opened ("" if it was not settled yet)."""
    payload = {
        "code": code,
        "symbol": symbol,
        "lock_at": _utc_iso(lock_at),
        "settle_at": _utc_iso(settle_at),
        "fee_bps": int(fee_bps),
        "rule_version": int(rule_version),
        "prev_commit_hash": prev_commit_hash or "",
    }
    if int(rule_version) >= 2:
        payload["prev_settlement_digest"] = prev_settlement_digest or ""
    return hashlib.sha256(_canonical(payload)).hexdigest()


def settlement_digest_compute(
    *,
    commit_hash: str,
    result: str,
    close_price: Decimal | None,
    close_source: str,
    reference_price: Decimal | None,
    reference_source: str,
    up_pool_u: int,
    down_pool_u: int,
    fee_u: int,
    payouts: Iterable[tuple[int, int]] = (),
    merkle_root: Callable[[], str] | None = None,
    payout_lines: Iterable[bytes] = (),
) -> str:
    """SHA-256 over a canonical JSON header line, then one "bet_id,payout_u" line per bet in id order.

    `payouts` must come sorted by bet id; it is streamed, so a million bets hash in flat memory.
    `payout_lines` is the same text already made (chunks of b"bet_id,payout_u\\n" lines, as
    betting.selectors.bet_payout_lines_iter streams them from PostgreSQL); give one or the other.
    From rule_version 2 a last line "merkle_root,<hex>" commits the receipts' root: `merkle_root`
    is called once the payouts are consumed (the same pass over the bets builds the tree).
    """
    header = {
        "commit_hash": commit_hash,
        "result": result,
        "close_price": _price(close_price),
        "close_source": close_source or "",
        "reference_price": _price(reference_price),
        "reference_source": reference_source or "",
        "up_pool_u": int(up_pool_u),
        "down_pool_u": int(down_pool_u),
        "fee_u": int(fee_u),
    }
    digest = hashlib.sha256(_canonical(header) + b"\n")
    for bet_id, payout_u in payouts:
        digest.update(f"{int(bet_id)},{int(payout_u)}\n".encode())
    for lines in payout_lines:
        digest.update(lines)
    if merkle_root is not None:
        digest.update(f"merkle_root,{merkle_root()}\n".encode())
    return digest.hexdigest()
