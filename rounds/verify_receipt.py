"""Check a bet receipt without trusting the house: `python -m rounds.verify_receipt receipt.json`.

Standard library only, so a bettor may copy this one file and run it anywhere. The receipt is the
body of `GET /api/v1/bets/<id>/receipt`; the published side is `GET /api/v1/rounds/<code>/settlement`
(no login), whose `merkle_root`, pools and fee must be the ones in the receipt (pass that body as a
second file to compare them: `python -m rounds.verify_receipt receipt.json settlement.json`).

It checks (1) the Merkle path: the leaf (bet id, pseudonym, side, stake, payout) hashed up the path
gives the published root, so this bet with this payout is one of the round's settled bets; and (2)
the payout: recomputed from the published pools and fee by the house rules (VOID: the stake back;
the winning side: stake + floor(stake × (losing pool − fee) / winning pool); the losing side: 0).

The tree (also the server's, rounds.merkle): leaf = SHA-256(0x00 || "bet_id|pseudonym|side|stake_u|
payout_u"), node = SHA-256(0x01 || left || right), leaves in bet id order, an odd node last on its
level is carried up unchanged. A path is a list of {"side": "left" | "right", "hash": hex}: the
sibling's side and hash, from the leaf up. Exit status 0 when the receipt verifies, 1 when it does not.
"""

import hashlib
import json
import sys
from typing import Any

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_bytes(*, bet_id: int, pseudonym: str, side: str, stake_u: int, payout_u: int) -> bytes:
    return f"{int(bet_id)}|{pseudonym}|{side}|{int(stake_u)}|{int(payout_u)}".encode()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_from_path(leaf: bytes, path: list[dict[str, str]]) -> bytes:
    node = leaf
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        node = node_hash(sibling, node) if step["side"] == "left" else node_hash(node, sibling)
    return node


def payout_expected_u(*, result: str, side: str, stake_u: int, up_pool_u: int, down_pool_u: int, fee_u: int) -> int:
    if result == "VOID":
        return stake_u
    if side != result:
        return 0
    winning_u, losing_u = (up_pool_u, down_pool_u) if result == "UP" else (down_pool_u, up_pool_u)
    return stake_u + stake_u * (losing_u - fee_u) // winning_u


def fee_expected_u(*, result: str, up_pool_u: int, down_pool_u: int, fee_bps: int) -> int:
    if result == "VOID":
        return 0
    losing_u = down_pool_u if result == "UP" else up_pool_u
    return losing_u * fee_bps // 10_000


def receipt_problems(receipt: dict[str, Any], published: dict[str, Any] | None = None) -> list[str]:
    """Every reason the receipt does not verify (empty: it does)."""
    problems: list[str] = []
    bet, settlement = receipt["bet"], receipt["settlement"]
    if published is not None:
        for key in ("merkle_root", "result", "up_pool_u", "down_pool_u", "fee_u", "fee_bps"):
            if published.get(key) != settlement.get(key):
                problems.append(
                    f"{key} differs from the published settlement: {settlement.get(key)!r} vs {published.get(key)!r}"
                )
    leaf = leaf_hash(
        leaf_bytes(
            bet_id=bet["id"],
            pseudonym=bet["pseudonym"],
            side=bet["side"],
            stake_u=bet["stake_u"],
            payout_u=bet["payout_u"],
        )
    )
    if leaf.hex() != receipt.get("leaf"):
        problems.append("the leaf is not the hash of the bet's fields")
    if root_from_path(leaf, receipt["path"]).hex() != settlement["merkle_root"]:
        problems.append(
            "the Merkle path does not lead to the published root: this bet is not in the settlement as shown"
        )
    fee_u = fee_expected_u(
        result=settlement["result"],
        up_pool_u=settlement["up_pool_u"],
        down_pool_u=settlement["down_pool_u"],
        fee_bps=settlement["fee_bps"],
    )
    if fee_u != settlement["fee_u"]:
        problems.append(f"the fee should be {fee_u} u by the published pools and fee rate, not {settlement['fee_u']} u")
    expected_u = payout_expected_u(
        result=settlement["result"],
        side=bet["side"],
        stake_u=bet["stake_u"],
        up_pool_u=settlement["up_pool_u"],
        down_pool_u=settlement["down_pool_u"],
        fee_u=settlement["fee_u"],
    )
    if expected_u != bet["payout_u"]:
        problems.append(f"the payout should be {expected_u} u by the published pools and fee, not {bet['payout_u']} u")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m rounds.verify_receipt receipt.json [settlement.json]", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            receipt = json.load(handle)
        published = None
        if len(argv) == 3:
            with open(argv[2], encoding="utf-8") as handle:
                published = json.load(handle)
        problems = receipt_problems(receipt, published)
    except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
        print(f"NOT VERIFIED: unreadable receipt ({type(exc).__name__}: {exc})")
        return 1
    bet = receipt["bet"]
    if problems:
        for problem in problems:
            print(f"NOT VERIFIED: {problem}")
        return 1
    print(
        f"VERIFIED: bet {bet['id']} ({bet['side']}, stake {bet['stake_u']} u) paid {bet['payout_u']} u in round "
        f"{receipt['settlement']['round']}, root {receipt['settlement']['merkle_root']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
