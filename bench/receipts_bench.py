"""Benchmark: the receipts' Merkle root over N bets (default 100 000), the CPU part of settlement.

    .venv/bin/python bench/receipts_bench.py [--bets 100000] [--users 20000]

Times rounds.merkle as round_settle runs it (pseudonym HMAC once per user, leaf SHA-256 per bet,
the streamed tree), on rows shaped like bet_receipt_rows_iter's, with no database. Baseline in the
same run: one bare SHA-256 per bet over the same leaf bytes (the least any per-bet commitment costs).
The database side (the wider streamed SELECT) is in bench/settle_bench.py's settle and verify times.
"""

import argparse
import hashlib
import os
import sys
import time
import uuid
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bets", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from rounds.merkle import MerkleRoot, leaves_iter

    users = [uuid.uuid4() for _ in range(args.users)]
    rows = [
        (i + 1, users[i % args.users], "UP" if i % 3 else "DOWN", 1_000_000 + i, 2_000_000 * (i % 2))
        for i in range(args.bets)
    ]
    started = time.perf_counter()
    tree = MerkleRoot()
    for _, leaf in leaves_iter(round_code="20250908", rows=rows):
        tree.add(leaf)
    root = tree.root
    merkle_s = time.perf_counter() - started
    started = time.perf_counter()
    for row in rows:
        hashlib.sha256(f"{row[0]}|{row[1]}|{row[2]}|{row[3]}|{row[4]}".encode()).digest()
    baseline_s = time.perf_counter() - started
    print(f"bets:              {args.bets} ({args.users} users)")
    print(f"merkle root:       {merkle_s:.3f} s  ({root[:16]}…)")
    print(f"baseline:          {baseline_s:.3f} s  <- one SHA-256 per bet")
    print(f"ratio to baseline: {merkle_s / baseline_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
