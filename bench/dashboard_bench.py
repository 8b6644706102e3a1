"""Benchmark: one refresh of `manage.py dashboard` at 1 000 000 bets and 10 000 000 ledger entries (PostgreSQL).

    .venv/bin/python bench/dashboard_bench.py [--bets 1000000] [--entries 10000000] [--users 100000]
        [--open-round-bets 20000] [--runs 20] [--url EXISTING_DATABASE_URL] [--reuse]

Creates a fresh database (dropped and re-created), migrates it, then writes the data in bulk SQL
(generate_series; the ledger's row triggers are skipped while loading, and every batch is built
balanced): users and their cash accounts, a settled round holding most of the bets and the OPEN
current round holding --open-round-bets, one deposit batch per user, one batch per bet (cash ->
pool, as bet_place posts it), the settled round's payout, and deposit/withdrawal cycles up to
--entries ledger entries; cached balances are then set from the entries, and ANALYZE runs.

It times `ops.terminal.dashboard_snapshot()` (every panel's selector: what one refresh reads) and
the rich rendering of it, counts the statements of one refresh, and measures a baseline in the
same run: one `SELECT 1` round trip on the same connection. Each figure is the median of --runs,
after one warm-up (the migration state is cached per process, as in the live loop; the cold
first refresh is printed too). Then the worst case: the round holding most of the bets made the
current one (OPEN, earliest): its bettor count and largest stakes are on its row, as for any round.
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bets", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--open-round-bets", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", default="", help="an existing database (default: a fresh one from bench/harness.py)")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run loaded")
    args = parser.parse_args()
    if not 0 < args.open_round_bets < args.bets:
        parser.error("--open-round-bets must be between 1 and --bets - 1")
    fixed_entries = 2 * args.users + 2 * args.bets + 2
    if args.entries < fixed_entries:
        parser.error(f"--entries must be at least {fixed_entries} (deposits, stakes and the payout)")

    url = args.url or (
        f"{harness.pg_server()}/{harness.PREFIX}_dashboard" if args.reuse else harness.database_fresh("dashboard")
    )
    harness.django_setup(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rich.console import Console

    from ops.migration_state import migrations_pending_forget
    from ops.terminal import dashboard_render, dashboard_snapshot

    started = time.perf_counter()
    if args.reuse:
        with connection.cursor() as cursor:  # as the load left it: the big round settled
            cursor.execute("UPDATE rounds SET status = 'SETTLED', result = 'UP' WHERE code = '20261127'")
    else:
        _load(connection, args)
    setup_seconds = time.perf_counter() - started

    def median_seconds(work) -> float:
        samples = []
        for _ in range(args.runs):
            began = time.perf_counter()
            work()
            samples.append(time.perf_counter() - began)
        return statistics.median(samples)

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def render(snapshot) -> None:
        Console(file=io.StringIO(), width=140, color_system=None).print(dashboard_render(snapshot))

    def measure(label: str) -> dict:
        migrations_pending_forget()
        began = time.perf_counter()
        with CaptureQueriesContext(connection) as cold_queries:
            cold = dashboard_snapshot()  # the first refresh of the process also reads the migration state
        cold_seconds = time.perf_counter() - began
        with CaptureQueriesContext(connection) as queries:
            snapshot = dashboard_snapshot()
        slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
        baseline = median_seconds(select_one)
        refresh = median_seconds(dashboard_snapshot)
        drawing = median_seconds(lambda: render(snapshot))
        current = snapshot["round"]
        print(f"\n{label}")
        print(f"  current round:     {current['code']} {current['status']}, {current['bettors']:,} bettors")
        print(f"  refresh (reads):   {refresh * 1000:.1f} ms median of {args.runs}  <- dashboard_snapshot()")
        count = len(queries.captured_queries)
        print(
            f"  statements:        {count} per refresh; {len(cold_queries.captured_queries)} when the migration "
            f"state is read again (every MIGRATION_STATUS_CACHE_SECONDS; that refresh: {cold_seconds * 1000:.1f} ms)"
        )
        print(f"  render (rich):     {drawing * 1000:.1f} ms median")
        print(f"  baseline:          {baseline * 1000:.3f} ms  <- one SELECT 1 round trip, same connection")
        print(f"  ratio to baseline: {refresh / baseline:.1f}")
        print("  slowest statements:")
        for query in slowest:
            print(f"    {float(query['time']) * 1000:7.1f} ms  {' '.join(query['sql'].split())[:110]}")
        assert cold["database"]["ok"] and snapshot["database"]["ok"]
        return {"refresh": refresh, "statements": max(count, len(cold_queries.captured_queries))}

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM bets")
        (bets,) = cursor.fetchone()
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'ledger_entries'")
        (entries,) = cursor.fetchone()
        cursor.execute("SELECT COALESCE(SUM(amount_u), 0) FROM ledger_entries")
        (global_sum_u,) = cursor.fetchone()
    server_version = connection.cursor().connection.info.server_version
    print(f"database:          {connection.vendor} {connection.settings_dict['NAME']} ({server_version})")
    print(f"load average:      {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores shared)")
    print(f"setup:             {setup_seconds:.1f} s: {args.users:,} users, {bets:,} bets, ~{entries:,} ledger entries")
    print(f"ledger global sum: {global_sum_u} u")
    typical = measure(f"typical: the OPEN round holds {args.open_round_bets:,} of the {bets:,} bets")
    with connection.cursor() as cursor:  # the big round becomes the current one (OPEN, earliest code)
        cursor.execute("UPDATE rounds SET status = 'OPEN', result = NULL WHERE code = '20261127'")
    worst = measure(f"worst case: the current round holds {bets - args.open_round_bets:,} bets")
    ok = global_sum_u == 0 and max(typical["statements"], worst["statements"]) <= 10
    return 0 if ok else 1


def _load(connection, args) -> None:
    """The bench data, set-based. Triggers are off while loading (session_replication_role = replica);
    every ledger batch written here sums to zero by construction, and the bench checks the global sum."""
    history_bets = args.bets - args.open_round_bets
    cycles = (args.entries - (2 * args.users + 2 * args.bets + 2)) // 8  # 8 entries per cycle batch
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "INSERT INTO users (id, password, is_superuser, email, is_staff, is_active, date_joined) "
            "SELECT gen_random_uuid(), '!', false, 'bench' || g || '@example.com', false, true, "
            "now() - interval '30 days' "
            "FROM generate_series(1, %s) g",
            [args.users],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_users AS SELECT row_number() OVER (ORDER BY id) AS n, id, "
            "'user:' || id::text || ':cash' AS cash FROM users"
        )
        cursor.execute("CREATE UNIQUE INDEX ON bench_users (n)")
        cursor.execute(
            "INSERT INTO ledger_accounts (code, kind, owner_id, balance_u, created_at) "
            "SELECT cash, 'user_cash', id, 0, now() FROM bench_users"
        )
        cursor.execute(
            "INSERT INTO rounds (code, symbol, status, result, lock_at, settle_at, fee_bps, rule_version, up_pool_u, "
            "down_pool_u, reference_source, close_source, prev_commit_hash, commit_hash, settlement_digest, "
            "lock_reason, settle_reason, created_at, settled_at, locked_at) VALUES "
            "('20261127', 'NDX', 'SETTLED', 'UP', now() - interval '4 days', "
            " now() - interval '4 days' + interval '5 minutes', "
            " 100, 1, 0, 0, 'bench', 'bench', '', repeat('a', 64), '', '', 'bench', now() - interval '5 days', "
            " now() - interval '4 days' + interval '6 minutes', now() - interval '4 days'), "
            "('20261201', 'NDX', 'OPEN', NULL, now() + interval '2 hours', now() + interval '2 hours 5 minutes', "
            " 100, 1, 0, 0, '', '', repeat('a', 64), repeat('b', 64), '', '', '', now(), NULL, NULL)"
        )
        cursor.execute(
            "INSERT INTO ledger_accounts (code, kind, balance_u, created_at) "
            "SELECT 'round:' || code || ':pool', 'round_pool', 0, now() FROM rounds"
        )
        # Bets: stakes 100 000 .. 1 099 999 u, 3:2 for UP, users round-robin; the history round first.
        cursor.execute(
            "INSERT INTO bets (round_id, user_id, side, stake_u, status, payout_u, request_digest, created_at) "
            "SELECT CASE WHEN g <= %s THEN (SELECT id FROM rounds WHERE code = '20261127') "
            "ELSE (SELECT id FROM rounds WHERE code = '20261201') END, u.id, "
            "CASE WHEN g %% 5 < 3 THEN 'UP' ELSE 'DOWN' END, 100000 + (g::bigint * 7919) %% 1000000, "
            "CASE WHEN g <= %s THEN 'LOST' ELSE 'PLACED' END, 0, '', "
            "CASE WHEN g <= %s THEN now() - interval '5 days' ELSE now() - interval '1 hour' END "
            "FROM generate_series(1, %s) g JOIN bench_users u ON u.n = 1 + g %% %s",
            [history_bets, history_bets, history_bets, args.bets, args.users],
        )
        cursor.execute(
            "UPDATE rounds r SET up_pool_u = s.up, down_pool_u = s.down FROM (SELECT round_id, "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'UP'), 0) AS up, "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'DOWN'), 0) AS down FROM bets GROUP BY round_id) s "
            "WHERE r.id = s.round_id"
        )
        # The bettors' running totals and the rounds' holders, as bet_place keeps them with every bet.
        cursor.execute(
            "INSERT INTO bet_totals (round_id, user_id, up_u, down_u) SELECT round_id, user_id, "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'UP'), 0), "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'DOWN'), 0) "
            "FROM bets GROUP BY round_id, user_id"
        )
        cursor.execute(
            "UPDATE rounds r SET bettors = t.n, up_top_u = t.up, down_top_u = t.down, top_u = t.top FROM (SELECT "
            "round_id, COUNT(*) AS n, MAX(up_u) AS up, MAX(down_u) AS down, MAX(up_u + down_u) AS top FROM bet_totals "
            "GROUP BY round_id) t WHERE r.id = t.round_id"
        )
        # Ledger batches: deposits (one per user), stakes (one per bet), the history round's payout, cycles.
        cursor.execute(
            "INSERT INTO ledger_batches (idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
            "SELECT 'bench:deposit:' || n, 'deposit', n::text, '', '', now() - interval '30 days' FROM bench_users"
        )
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT x.account, x.amount_u, 'deposit', u.n::text, b.id, b.created_at FROM bench_users u "
            "JOIN ledger_batches b ON b.idempotency_key = 'bench:deposit:' || u.n "
            "CROSS JOIN LATERAL (VALUES (u.cash, 1000000000000::bigint), ('external:deposits', -1000000000000)) "
            "x(account, amount_u)"
        )
        cursor.execute(
            "INSERT INTO ledger_batches (idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
            "SELECT 'bet:' || id, 'bet', id::text, '', '', created_at FROM bets"
        )
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT x.account, x.amount_u, 'bet', bt.id::text, b.id, bt.created_at FROM bets bt "
            "JOIN users usr ON usr.id = bt.user_id JOIN rounds r ON r.id = bt.round_id "
            "JOIN ledger_batches b ON b.idempotency_key = 'bet:' || bt.id "
            "CROSS JOIN LATERAL (VALUES ('user:' || usr.id::text || ':cash', -bt.stake_u), "
            "('round:' || r.code || ':pool', bt.stake_u)) x(account, amount_u)"
        )
        cursor.execute(
            "INSERT INTO ledger_batches (idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
            "VALUES ('settlement:20261127', 'settlement', '20261127', '', '', now() - interval '4 days')"
        )
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT x.account, x.amount_u, 'settlement', '20261127', b.id, b.created_at FROM ledger_batches b "
            "CROSS JOIN (SELECT up_pool_u + down_pool_u AS pool_u FROM rounds WHERE code = '20261127') p "
            "CROSS JOIN LATERAL (VALUES ('round:20261127:pool', -p.pool_u), ('house', p.pool_u)) x(account, amount_u) "
            "WHERE b.idempotency_key = 'settlement:20261127'"
        )
        # Cycles: a deposit and the same amount withdrawn again, twice per batch (8 entries, sum 0).
        cursor.execute(
            "INSERT INTO ledger_batches (idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
            "SELECT 'bench:cycle:' || g, 'deposit', g::text, '', '', now() - interval '30 days' + g * interval '1 ms' "
            "FROM generate_series(1, %s) g",
            [cycles],
        )
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT x.account, x.amount_u, 'deposit', b.ref_id, b.id, b.created_at FROM ledger_batches b "
            "JOIN bench_users u ON u.n = 1 + b.ref_id::bigint %% %s "
            "CROSS JOIN LATERAL (VALUES (u.cash, 5000000::bigint), ('external:deposits', -5000000), "
            "(u.cash, -5000000), ('external:withdrawals', 5000000), "
            "(u.cash, 7000000), ('external:deposits', -7000000), "
            "(u.cash, -7000000), ('external:withdrawals', 7000000)) x(account, amount_u) "
            "WHERE b.idempotency_key LIKE 'bench:cycle:%%'",
            [args.users],
        )
        cursor.execute(
            "UPDATE ledger_accounts a SET balance_u = s.total FROM (SELECT account, SUM(amount_u) AS total "
            "FROM ledger_entries GROUP BY account) s WHERE a.code = s.account"
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a table: statistics and the visibility map
    from rounds.models import Round, RoundSettlement

    settled = Round.objects.get(code="20261127")
    RoundSettlement.objects.create(
        round=settled,
        result="UP",
        requested_result="AUTO",
        up_pool_u=settled.up_pool_u,
        down_pool_u=settled.down_pool_u,
        fee_u=0,
        dust_u=0,
        paid_out_u=settled.up_pool_u + settled.down_pool_u,
        bets_count=args.bets - args.open_round_bets,
        winners_count=0,
        digest="c" * 64,
        source="beat",
        reason="bench",
    )


if __name__ == "__main__":
    sys.exit(main())
