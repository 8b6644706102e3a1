"""The receipts' Merkle tree on the server: root and paths over a round's bets, streamed in id order.

The leaf and node hashes are `rounds.verify_receipt`'s (the bettor's stand-alone verifier), so the
server and the verifier cannot disagree. Pseudonyms are an HMAC of the round and the user id under
RECEIPT_PSEUDONYM_SECRET: a bettor recognises their own, nobody can tell who bet what, and the same
bettor has unrelated pseudonyms in two rounds.
"""

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

from rounds.verify_receipt import LEAF_PREFIX, NODE_PREFIX, node_hash

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
_sha256 = hashlib.sha256


class Pseudonyms:
    """HMAC-SHA256(secret, "<round code>:<user id>")[:32 hex], one per (round, user), computed once each."""

    def __init__(self, round_code: str):
        self._base = hmac.new(settings.RECEIPT_PSEUDONYM_SECRET.encode(), f"{round_code}:".encode(), hashlib.sha256)
        self._known: dict[Any, str] = {}

    def __call__(self, user_id: Any) -> str:
        known = self._known.get(user_id)
        if known is None:
            known = self._known[user_id] = self.compute(user_id)
        return known

    def compute(self, user_id: Any) -> str:
        """The pseudonym, not remembered (for callers that ask once per user)."""
        mac = self._base.copy()
        mac.update(str(user_id).encode())
        return mac.hexdigest()[:32]


class MerkleRoot:
    """Add leaves in order, read `root` at the end: O(log n) memory (a stack of subtree roots)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing
        self.count = 0

    def add(self, leaf: bytes) -> None:
        # node_hash inlined: this runs once per bet of a settlement (a million in the big rounds).
        height, node = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == height:
            node = _sha256(NODE_PREFIX + stack.pop()[1] + node).digest()
            height += 1
        stack.append((height, node))
        self.count += 1

    @property
    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):  # the odd subtrees on the right are carried up
            node = node_hash(left, node)
        return node.hex()


def leaves_iter(*, round_code: str, rows: Iterable[tuple[int, Any, str, int, int]]) -> Iterator[tuple[tuple, bytes]]:
    """(row, leaf hash) for (bet id, user id, side, stake_u, payout_u) rows in bet id order.

    The leaf is verify_receipt's `leaf_hash(leaf_bytes(...))`, inlined for speed
    (tests/rounds/test_receipts.py holds the two to the same bytes).
    """
    pseudonym = Pseudonyms(round_code)
    for row in rows:
        bet_id, user_id, side, stake_u, payout_u = row
        data = f"{bet_id}|{pseudonym(user_id)}|{side}|{stake_u}|{payout_u}".encode()
        yield row, _sha256(LEAF_PREFIX + data).digest()


def payouts_into_tree(
    receipts: MerkleRoot, *, round_code: str, rows: Iterable[tuple[int, Any, str, int, int]]
) -> Iterator[tuple[int, int]]:
    """(bet id, payout_u) for the settlement digest, adding each bet's leaf to `receipts` on the way."""
    for row, leaf in leaves_iter(round_code=round_code, rows=rows):
        receipts.add(leaf)
        yield row[0], row[4]


def payout_lines_into_tree(receipts: MerkleRoot | None, *, round_code: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """payouts_into_tree for rows as betting.selectors.bet_receipt_rows_text writes them
    (b"<bet id>|<user id>|<side>|<stake_u>|<payout_u>\\n"): the digest's b"<bet id>,<payout_u>\\n" lines,
    a chunk at a time, adding each bet's leaf to `receipts` on the way (None: the digest only).

    The leaf is leaves_iter's, made from the text as it came (integers in decimal, as f-strings
    write them; tests/rounds/test_receipts.py holds the two to the same bytes).
    """
    pseudonym = Pseudonyms(round_code)
    known: dict[bytes, bytes] = {}
    add = receipts.add if receipts is not None else None
    for chunk in chunks:
        lines = chunk.split(b"\n")
        if lines.pop():
            raise ValueError("payout_lines_into_tree: a chunk that does not end on a whole line")
        out = []
        for line in lines:
            bet_id, user_id, side, stake_u, payout_u = line.split(b"|")
            out.append(b"%b,%b\n" % (bet_id, payout_u))
            if add is not None:
                alias = known.get(user_id)
                if alias is None:
                    alias = known[user_id] = pseudonym.compute(user_id.decode()).encode()
                add(_sha256(LEAF_PREFIX + b"|".join((bet_id, alias, side, stake_u, payout_u))).digest())
        yield b"".join(out)


def merkle_path(leaves: list[bytes], index: int) -> list[dict[str, str]]:
    """The siblings from leaf `index` up to the root (the verifier's `path`)."""
    path: list[dict[str, str]] = []
    level = leaves
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append({"side": "left" if sibling < index else "right", "hash": level[sibling].hex()})
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        index //= 2
    return path
