"""Benchmark: settle a round of N bets (default 100 000) on PostgreSQL.

    .venv/bin/python bench/settle_bench.py [--bets 100000] [--users 20000]
        [--url EXISTING_DATABASE_URL]

Creates a fresh database (dropped and re-created), migrates it, then builds the
round set-based in SQL: users and cash accounts, one deposit batch, N bets and one
stake batch (cash -> pool), all through ledger_post_from_sql so the ledger stays
balanced. Then it locks the round and times round_settle (the whole transaction:
bets UPDATE, INSERT…SELECT ledger batch, digest over every bet), and verify_round.
Prints seconds and rows, and the ratio to a baseline measured in the same run on
the same data, both started on the vacuumed table: a bare set-based SQL settlement (rolled back):
one UPDATE of every bet with its payout, one INSERT … SELECT of an entry per paid user (and the pool
and house lines), one UPDATE of the balances, and the checks the database defers to COMMIT (the
entries' foreign keys, the balanced-batch trigger): the least any
settlement that records a payout per bet and pays each user must do. The ratio is baseline /
settle: the settlement's speed as a fraction of the bare SQL's (the goal: >= 0.6). Also prints
the process's peak memory (the goal: < 300 MB at 1 000 000 bets). bench/bench.py runs it.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bets", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="print the slowest SQL statements of the settlement")
    parser.add_argument("--url", default="", help="an existing database (default: a fresh one from bench/harness.py)")
    args = parser.parse_args()

    url = args.url or harness.database_fresh("settle")
    harness.django_setup(url)
    from django.db import connection, transaction

    from ledger.models import Account
    from ledger.services import ledger_post_from_sql
    from rounds.models import Round
    from rounds.selectors import round_verify
    from rounds.services import round_lock, round_open, round_settle

    code = "20250908"
    started = time.perf_counter()
    round_, _ = round_open(code=code, force=True)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (id, password, is_superuser, email, is_staff, is_active, date_joined) "
            "SELECT gen_random_uuid(), '!', false, 'bench' || g || '@example.com', false, true, now() "
            "FROM generate_series(1, %s) g",
            [args.users],
        )
        cursor.execute(
            "INSERT INTO ledger_accounts (code, kind, owner_id, balance_u, created_at) "
            "SELECT 'user:' || id::text || ':cash', 'user_cash', id, 0, now() FROM users WHERE email LIKE 'bench%%'"
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_users AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM users "
            "WHERE email LIKE 'bench%%'"
        )
    ledger_post_from_sql(
        select_sql=(
            "SELECT a.code AS account, CAST(1000000000 AS BIGINT) AS amount_u FROM ledger_accounts a "
            "WHERE a.kind = 'user_cash' UNION ALL SELECT 'external:deposits', -1000000000 * COUNT(*) "
            "FROM ledger_accounts WHERE kind = 'user_cash'"
        ),
        params=[],
        ref_type="deposit",
        ref_id="bench",
        idempotency_key="bench:deposits",
        max_line_u=1_000_000_000 * args.users,  # the world line carries every bench user's deposit
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Stakes 100 000 .. 1 099 999 u, sides alternating with a 3:2 tilt, users round-robin.
        cursor.execute(
            "INSERT INTO bets (round_id, user_id, side, stake_u, status, payout_u, request_digest, created_at) "
            "SELECT %s, u.id, CASE WHEN g %% 5 < 3 THEN 'UP' ELSE 'DOWN' END, 100000 + (g::bigint * 7919) %% 1000000, "
            "'PLACED', 0, '', now() FROM generate_series(1, %s) g JOIN bench_users u ON u.n = 1 + g %% %s",
            [round_.pk, args.bets, args.users],
        )
        cursor.execute(
            "UPDATE rounds SET up_pool_u = s.up, down_pool_u = s.down FROM (SELECT "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'UP'), 0) AS up, "
            "COALESCE(SUM(stake_u) FILTER (WHERE side = 'DOWN'), 0) AS down FROM bets WHERE round_id = %s) s "
            "WHERE rounds.id = %s",
            [round_.pk, round_.pk],
        )
    ledger_post_from_sql(
        select_sql=(
            "SELECT a.code AS account, -SUM(b.stake_u) AS amount_u FROM bets b JOIN ledger_accounts a "
            "ON a.owner_id = b.user_id AND a.kind = 'user_cash' WHERE b.round_id = %s GROUP BY a.code "
            "UNION ALL SELECT CAST(%s AS VARCHAR(100)), SUM(stake_u) FROM bets WHERE round_id = %s"
        ),
        params=[round_.pk, Account.round_pool_code(code), round_.pk],
        ref_type="bet",
        ref_id="bench",
        idempotency_key="bench:stakes",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    round_lock(code=code)
    setup_seconds = time.perf_counter() - started

    with connection.cursor() as cursor:  # the baseline and the settlement both start from a vacuumed table
        cursor.execute("VACUUM ANALYZE bets, ledger_accounts, ledger_entries")
    baseline_seconds = _bare_settlement(round_.pk, code)
    with connection.cursor() as cursor:  # the rolled-back baseline's dead rows gone, as autovacuum leaves a live table
        cursor.execute("VACUUM ANALYZE bets, ledger_accounts, ledger_entries")
    statements: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - began, " ".join(sql.split())[:160]))

    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        settlement = round_settle(code=code, result="UP", source="cli", reason="bench")
    settle_seconds = time.perf_counter() - started
    if args.profile:
        print(f"{len(statements)} statements; slowest:")
        for seconds, sql in sorted(statements, reverse=True)[:8]:
            print(f"  {seconds:6.2f} s  {sql}")

    started = time.perf_counter()
    report = round_verify(code=code)
    verify_seconds = time.perf_counter() - started

    round_ = Round.objects.get(code=code)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM ledger_entries WHERE ref_type = 'settlement'")
        (entries,) = cursor.fetchone()
    pool_left = Account.objects.get(code=Account.round_pool_code(code)).balance_u
    print(f"database:          {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"setup:             {setup_seconds:.2f} s ({args.users} users, {args.bets} bets)")
    print(f"settle:            {settle_seconds:.2f} s  <- round_settle, one transaction")
    print(f"  bets updated:    {settlement.bets_count} ({settlement.winners_count} winners)")
    print(f"  ledger entries:  {entries} (one per paid user + pool + house)")
    print(f"  pools:           UP {settlement.up_pool_u} u, DOWN {settlement.down_pool_u} u")
    print(f"  fee + dust:      {settlement.fee_u} + {settlement.dust_u} u; paid out {settlement.paid_out_u} u")
    print(f"  pool left:       {pool_left} u; status {round_.status} {round_.result}")
    print(f"verify_round:      {verify_seconds:.2f} s, {'match' if report.ok else 'MISMATCH'}")
    print(f"baseline:          {baseline_seconds:.2f} s  <- bare set-based SQL settlement (rolled back)")
    print(f"speed vs baseline: {baseline_seconds / settle_seconds:.2f} (baseline / settle)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory:       {peak_mb:.0f} MB (this process)")
    print(f"BENCH settle_s={settle_seconds:.3f}")
    print(f"BENCH baseline_s={baseline_seconds:.3f}")
    print(f"BENCH peak_rss_mb={peak_mb:.1f}")
    return 0 if report.ok and pool_left == 0 else 1


def _bare_settlement(round_id: int, round_code: str) -> float:
    """The least a set-based settlement does, timed and rolled back: bets marked with payouts, one
    entry per paid user in one batch with the pool and house lines that balance it, their balances
    raised (UP wins, 2 % fee, pro-rata), the deferred constraint checks run as a COMMIT would run them;
    with round_settle's work_mem."""
    from django.db import connection, transaction

    from ledger.models import Account
    from rounds.services import SETTLEMENT_WORK_MEM

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [SETTLEMENT_WORK_MEM])  # round_settle's
        cursor.execute(
            "SELECT COALESCE(SUM(stake_u) FILTER (WHERE side = 'UP'), 0), COALESCE(SUM(stake_u), 0) FROM bets "
            "WHERE round_id = %s",
            [round_id],
        )
        up_u, pool_u = cursor.fetchone()
        extra_u = pool_u - up_u - (pool_u * 200 // 10_000)
        cursor.execute(
            "UPDATE bets SET status = CASE WHEN side = 'UP' THEN 'WON' ELSE 'LOST' END, payout_u = CASE WHEN "
            "side = 'UP' THEN stake_u + (stake_u::numeric * %s / %s)::bigint ELSE 0 END WHERE round_id = %s",
            [extra_u, up_u, round_id],
        )
        cursor.execute(
            "INSERT INTO ledger_batches (idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
            "VALUES ('bench:bare', 'settlement', 'bare', '', '', now()) RETURNING id"
        )
        (batch_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT a.code, SUM(b.payout_u), 'settlement', 'bare', %s, now() FROM bets b JOIN ledger_accounts a "
            "ON a.owner_id = b.user_id AND a.kind = 'user_cash' WHERE b.round_id = %s AND b.payout_u > 0 "
            "GROUP BY a.code",
            [batch_id, round_id],
        )
        cursor.execute(  # the batch balanced: the pool emptied, the rest (fee and dust) to the house
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "SELECT %s, -%s::bigint, 'settlement', 'bare', %s, now() UNION ALL "
            "SELECT %s, %s - SUM(amount_u), 'settlement', 'bare', %s, now() FROM ledger_entries WHERE batch = %s",
            [Account.round_pool_code(round_code), pool_u, batch_id, Account.HOUSE, pool_u, batch_id, batch_id],
        )
        cursor.execute(
            "UPDATE ledger_accounts a SET balance_u = a.balance_u + e.amount_u FROM ledger_entries e "
            "WHERE e.batch = %s AND a.code = e.account",
            [batch_id],
        )
        # The checks PostgreSQL defers to COMMIT (the entries' foreign keys, the batch-balances trigger):
        # any settlement that commits pays them, so the rolled-back baseline runs them too.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
