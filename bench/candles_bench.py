"""Benchmark: the 1h candle query over 1 000 000 ticks on PostgreSQL.

    .venv/bin/python bench/candles_bench.py [--ticks 1000000] [--repeat 5]
        [--url postgres://postgres@127.0.0.1:5432/updown_candles_bench]

Creates a fresh database (dropped and re-created), migrates it, and inserts N ticks of one
symbol, one a second (generate_series, one statement), then ANALYZE. Times
marketdata.selectors.candles_get(interval="1h") twice: limit=24 (the last day, what a chart
asks) and limit=1000 (every tick of the run: 1 000 000 s is 278 hours). The baseline, measured
in the same run over the same ticks, is a bare aggregate scan of them (COUNT, MIN, MAX over the
same symbol and time range): the least any candle query must read. Prints the medians and ratios.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse


def _median_seconds(run, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/updown_candles_bench")
    args = parser.parse_args()

    import psycopg

    dbname = urlparse(args.url).path.lstrip("/")
    admin_url = args.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ["DATABASE_URL"] = args.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from marketdata.selectors import candles_get

    call_command("migrate", verbosity=0)
    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(seconds=args.ticks - 1)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO price_ticks (symbol, price, source, ts, received_at)
            SELECT 'NDX', 20000 + (i %% 5000) / 100.0 + (i %% 7), 'bench', %s + i * interval '1 second',
                   %s + i * interval '1 second'
            FROM generate_series(0, %s - 1) AS i
            """,
            [start, start, args.ticks],
        )
        cursor.execute("ANALYZE price_ticks")
    print(f"inserted {args.ticks} ticks ({start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC) in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip

    def baseline(since):
        def run():
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # as the candle query runs
                cursor.execute(
                    "SELECT COUNT(*), MIN(price), MAX(price) FROM price_ticks WHERE symbol = %s AND ts >= %s",
                    ["NDX", since],
                )
                return cursor.fetchone()

        return run

    for limit in (24, 1000):
        candles = candles_get(symbol="NDX", interval="1h", limit=limit)
        covered = sum(c.ticks for c in candles)
        since = candles[0].start
        candle_s = _median_seconds(
            lambda limit=limit: candles_get(symbol="NDX", interval="1h", limit=limit), args.repeat
        )
        count = baseline(since)()[0]
        assert count == covered, (count, covered)
        baseline_s = _median_seconds(baseline(since), args.repeat)
        print(
            f"1h candles, limit {limit}: {len(candles)} candles over {covered} ticks: {candle_s * 1000:.1f} ms "
            f"(median of {args.repeat}); baseline COUNT/MIN/MAX scan of the same ticks {baseline_s * 1000:.1f} ms; "
            f"ratio {candle_s / baseline_s:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
