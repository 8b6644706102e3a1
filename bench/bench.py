"""The benchmarks of issue 12, each a figure and a ratio to a baseline measured in the same run.

    .venv/bin/python bench/bench.py [bets|reads|settle|audit|seed|all ...] [--quick] [--no-write]

    bets    POST /api/v1/bets over HTTP (a real gunicorn, wrk, 10 000 funded bettors) vs GET /healthz
    reads   GET /rounds/current and GET /api/v1/me vs GET /healthz
    settle  settle_round of 1 000 000 bets / 200 000 bettors vs a bare set-based SQL settlement
    audit   ledger_audit over 10 000 000 entries vs one bare scan; tvl at that size
    seed    manage.py seed --users N --password … vs a bare INSERT of as many users

`--quick` runs every scenario at a tenth of its size (a smoke run, not a figure to report). Databases are
`$BENCH_DB_PREFIX_<scenario>` (default prefix `bench`) on $BENCH_PG_URL (default 127.0.0.1:5432; when
nothing answers there the bench starts its own cluster); gunicorn listens on $BENCH_PORT (default 18200).
The table is printed and appended to bench/RESULTS.md (not with --no-write).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness  # noqa: E402
from harness import Row  # noqa: E402

SCENARIOS = ["bets", "reads", "settle", "audit", "seed"]


def _bettors(count: int, *, fund_u: int) -> Path:
    """`count` bettors with cash accounts, API tokens and `fund_u` each, in bulk SQL; the tokens file."""
    from ledger.services import ledger_post_from_sql

    harness.sql(
        "INSERT INTO users (id, password, is_superuser, email, is_staff, is_active, date_joined) "
        "SELECT gen_random_uuid(), '!', false, 'bench' || g || '@example.com', false, true, now() "
        "FROM generate_series(1, %s) g",
        [count],
    )
    harness.sql(
        "INSERT INTO ledger_accounts (code, kind, owner_id, balance_u, created_at) "
        "SELECT 'user:' || id::text || ':cash', 'user_cash', id, 0, now() FROM users WHERE email LIKE 'bench%%'"
    )
    harness.sql(
        "INSERT INTO authtoken_token (key, user_id, created) "
        "SELECT substr(md5(random()::text || id::text), 1, 40), id, now() FROM users WHERE email LIKE 'bench%%'"
    )
    ledger_post_from_sql(
        select_sql=(
            "SELECT code AS account, CAST(%s AS BIGINT) AS amount_u FROM ledger_accounts WHERE kind = 'user_cash' "
            "UNION ALL SELECT 'external:deposits', -%s * COUNT(*) FROM ledger_accounts WHERE kind = 'user_cash'"
        ),
        params=[fund_u, fund_u],
        ref_type="deposit",
        ref_id="bench",
        idempotency_key="bench:deposits",
        max_line_u=fund_u * count,
    )
    tokens = harness.WORK_DIR / "tokens.txt"
    tokens.write_text("\n".join(key for (key,) in harness.sql("SELECT key FROM authtoken_token ORDER BY key")) + "\n")
    harness.sql("ANALYZE")
    return tokens


def _open_round() -> str:
    """A round open for betting for the whole run: a trading day a week ahead (lock_at in the future)."""
    from django.utils import timezone

    from marketdata.selectors import market_today
    from rounds.services import round_open

    code = (market_today(now=timezone.now()) + timedelta(days=7)).strftime("%Y%m%d")
    round_open(code=code, force=True)
    assert round_open(code=code)[0].lock_at > timezone.now()
    return code


def _http_setup(bettors: int) -> tuple[str, Path, str]:
    url = harness.database_fresh("http")
    harness.django_setup(url)
    tokens = _bettors(bettors, fund_u=1_000_000_000)
    code = _open_round()
    return url, tokens, code


def _healthz(base: str, seconds: int) -> harness.Wrk:
    harness.wrk(base + "/healthz", seconds=1)  # warm-up
    result = harness.wrk(base + "/healthz", seconds=seconds)
    print(f"  GET /healthz: {result.rps:.0f} rps, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")
    return result


def scenario_bets(quick: bool) -> list[Row]:
    print("bets: 10 000 funded bettors, one open round, gunicorn (4 sync workers), wrk 32 connections")
    url, tokens, code = _http_setup(1_000 if quick else 10_000)
    seconds = 5 if quick else 15
    with harness.gunicorn(url) as base:
        healthz = _healthz(base, seconds)
        script = str(Path(__file__).resolve().parent / "bets.lua")
        harness.wrk(base + "/api/v1/bets", seconds=2, script=script, args=[str(tokens), "warm"])  # every worker warm
        with harness.profiled("bets", seconds):
            bets = harness.wrk(
                base + "/api/v1/bets", seconds=seconds, script=script, args=[str(tokens), uuid.uuid4().hex[:8]]
            )
        healthz_after = _healthz(base, seconds)
    baseline = (healthz.rps + healthz_after.rps) / 2
    print(f"  POST /api/v1/bets: {bets.rps:.0f} rps, p50 {bets.p50_ms:.1f} ms, p99 {bets.p99_ms:.1f} ms, "
          f"{bets.errors} errors of {bets.requests}")  # fmt: skip
    if bets.errors:
        print(bets.output)
    invariants = _bet_invariants(code)
    print(f"  afterwards: {invariants}")
    ok = invariants.startswith("ok")
    return [
        Row("bets", "≥ 0.35 × healthz", f"{bets.rps:.0f} bets/s", f"healthz {baseline:.0f} rps",
            f"{bets.rps / baseline:.2f}", bets.rps / baseline >= 0.35),
        Row("bets", "p99 ≤ 50 ms at 32 connections", f"p99 {bets.p99_ms:.1f} ms (p50 {bets.p50_ms:.1f} ms)",
            f"healthz p99 {healthz.p99_ms:.1f} ms", "—", bets.p99_ms <= 50),
        Row("bets", "0 errors, invariants true", f"{bets.errors} errors / {bets.requests}; {invariants}", "—", "—",
            bets.errors == 0 and ok),
    ]  # fmt: skip


def _bet_invariants(code: str) -> str:
    from ledger.selectors import account_balance_u, account_code_round_pool, ledger_audit

    audit = ledger_audit()
    [(up_u, down_u)] = harness.sql("SELECT up_pool_u, down_pool_u FROM rounds WHERE code = %s", [code])
    [(stakes_u, count)] = harness.sql(
        "SELECT COALESCE(SUM(stake_u), 0), COUNT(*) FROM bets b JOIN rounds r ON r.id = b.round_id WHERE r.code = %s",
        [code],
    )
    pool_u = account_balance_u(code=account_code_round_pool(round_code=code))
    pools_ok = up_u + down_u == stakes_u == pool_u
    verdict = "ok" if audit.ok and pools_ok else "BROKEN"
    return (
        f"{verdict}: {count} bets, pools {up_u + down_u} u = Σ stakes {stakes_u} u = pool account {pool_u} u "
        f"({'equal' if pools_ok else 'NOT equal'}), ledger_audit {'passes' if audit.ok else 'FAILS'}"
    )


def scenario_reads(quick: bool) -> list[Row]:
    print("reads: GET /rounds/current and GET /api/v1/me (10 000 bettors' tokens), gunicorn, wrk 32 connections")
    url, tokens, _code = _http_setup(1_000 if quick else 10_000)
    seconds = 5 if quick else 10
    script = str(Path(__file__).resolve().parent / "token_get.lua")
    with harness.gunicorn(url) as base:
        healthz = _healthz(base, seconds)
        harness.wrk(base + "/rounds/current", seconds=2)  # warm-up: every worker has imported the views
        harness.wrk(base + "/api/v1/me", seconds=2, script=script, args=[str(tokens), "/api/v1/me"])
        with harness.profiled("current", seconds):
            current = harness.wrk(base + "/rounds/current", seconds=seconds)
        me = harness.wrk(base + "/api/v1/me", seconds=seconds, script=script, args=[str(tokens), "/api/v1/me"])
        healthz_after = _healthz(base, seconds)
    baseline = (healthz.rps + healthz_after.rps) / 2
    rows = []
    for path, result in (("GET /rounds/current", current), ("GET /api/v1/me", me)):
        print(f"  {path}: {result.rps:.0f} rps, p99 {result.p99_ms:.1f} ms, {result.errors} errors")
        ratio = result.rps / baseline
        rows.append(
            Row("reads", f"{path} ≥ 0.6 × healthz", f"{result.rps:.0f} rps (p99 {result.p99_ms:.1f} ms, "
                f"{result.errors} errors)", f"healthz {baseline:.0f} rps", f"{ratio:.2f}",
                ratio >= 0.6 and result.errors == 0)
        )  # fmt: skip
    return rows


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario_settle(quick: bool) -> list[Row]:
    bets, users = (100_000, 20_000) if quick else (1_000_000, 200_000)
    print(f"settle: settle_round of {bets} bets / {users} bettors on PostgreSQL (a process of its own)")
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "settle_bench.py"), "--bets", str(bets),
         "--users", str(users), "--url", harness.database_fresh("settle")],
        capture_output=True, text=True,
    )  # fmt: skip
    print(out.stdout, out.stderr)
    figures = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("BENCH "))
    if out.returncode or not figures:
        return [Row("settle", "settlement matches", "FAILED (see output)", "—", "—", False)]
    settle_s, baseline_s = float(figures["BENCH settle_s"]), float(figures["BENCH baseline_s"])
    rss_mb = float(figures["BENCH peak_rss_mb"])
    speed = baseline_s / settle_s
    return [
        Row("settle", f"{bets:,} bets ≤ 12 s end to end", f"{settle_s:.2f} s", f"bare SQL {baseline_s:.2f} s",
            f"{speed:.2f} (≥ 0.6)", settle_s <= 12 and speed >= 0.6),
        Row("settle", "peak memory < 300 MB", f"{rss_mb:.0f} MB", "—", "—", rss_mb < 300),
    ]  # fmt: skip


def scenario_audit(quick: bool) -> list[Row]:
    entries = 1_000_000 if quick else 10_000_000
    print(f"audit: ledger_audit and tvl over {entries:,} ledger entries (bulk SQL)")
    url = harness.database_fresh("audit")
    harness.django_setup(url)
    from ledger.selectors import ledger_audit, tvl_get

    accounts = 200_000 if not quick else 20_000
    started = time.perf_counter()
    harness.sql(
        "INSERT INTO ledger_accounts (code, kind, owner_id, balance_u, created_at) "
        "SELECT 'user:' || g || ':cash', 'user_cash', NULL, 0, now() FROM generate_series(1, %s) g",
        [accounts],
    )
    batches = entries // 2
    harness.sql("SET session_replication_role = replica")  # bulk data: the per-row commit trigger off
    harness.sql(
        "INSERT INTO ledger_batches (id, idempotency_key, ref_type, ref_id, lines_digest, memo, created_at) "
        "SELECT g, 'bench:' || g, 'deposit', 'bench:' || g, '', '', now() FROM generate_series(1, %s) g",
        [batches],
    )
    harness.sql("SELECT setval(pg_get_serial_sequence('ledger_batches', 'id'), %s)", [batches])
    # Two lines per batch: a deposit of 1..1000 USDC to one user, from the world account.
    harness.sql(
        "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
        "SELECT CASE WHEN side = 0 THEN 'user:' || (1 + g %% %s) || ':cash' ELSE 'external:deposits' END, "
        "CASE WHEN side = 0 THEN 1 ELSE -1 END * (1000000 * (1 + g %% 1000)), 'deposit', 'bench:' || g, g, now() "
        "FROM generate_series(1, %s) g CROSS JOIN (VALUES (0), (1)) s(side)",
        [accounts, batches],
    )
    harness.sql("SET session_replication_role = DEFAULT")
    harness.sql(
        "UPDATE ledger_accounts a SET balance_u = s.total FROM (SELECT account, SUM(amount_u) AS total "
        "FROM ledger_entries GROUP BY account) s WHERE a.code = s.account"
    )
    harness.sql("ANALYZE")
    print(f"  data: {time.perf_counter() - started:.1f} s")
    harness.sql("SELECT COUNT(*) FROM ledger_entries")  # warm the cache as the audit finds it on a live system
    started = time.perf_counter()
    harness.sql("SELECT COUNT(*), SUM(amount_u) FROM ledger_entries")
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    audit = ledger_audit()
    audit_s = time.perf_counter() - started
    started = time.perf_counter()
    tvl_get()
    tvl_s = time.perf_counter() - started
    print(
        f"  ledger_audit: {audit_s:.2f} s ({audit.entries_checked} entries, ok={audit.ok}); "
        f"bare scan {baseline_s:.2f} s"
    )
    print(f"  tvl_get: {tvl_s * 1000:.1f} ms")
    return [
        Row("audit", f"ledger_audit over {entries:,} entries ≤ 5 s",
            f"{audit_s:.2f} s ({'passes' if audit.ok else 'FAILS'})",
            f"one bare scan {baseline_s:.2f} s", f"{audit_s / baseline_s:.2f} × scan", audit_s <= 5 and audit.ok),
        Row("audit", f"tvl ≤ 50 ms at {entries:,} entries", f"{tvl_s * 1000:.1f} ms", "—", "—", tvl_s <= 0.05),
    ]  # fmt: skip


def scenario_seed(quick: bool) -> list[Row]:
    users = 1_000 if quick else 5_000
    print(f"seed: manage.py seed --users {users} --fund 10 USDC --password … (a process of its own)")
    url = harness.database_fresh("seed")
    harness.django_setup(url)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "manage.py", "seed", "--users", str(users), "--fund", "10000000",
         "--password", "bench-pass-1"],
        cwd=harness.ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seed_s = time.perf_counter() - started
    if out.returncode:
        print(out.stdout[-2000:], out.stderr[-4000:])
        return [Row("seed", "≥ 500 users/s", "FAILED", "—", "—", False)]
    [(made,)] = harness.sql("SELECT COUNT(*) FROM users WHERE email LIKE 'bettor%%'")
    started = time.perf_counter()
    harness.sql(
        "INSERT INTO users (id, password, is_superuser, email, is_staff, is_active, date_joined) "
        "SELECT gen_random_uuid(), '!', false, 'bare' || g || '@example.com', false, true, now() "
        "FROM generate_series(1, %s) g",
        [users],
    )
    bare_s = time.perf_counter() - started
    rate = made / seed_s
    print(f"  seed: {made} users in {seed_s:.2f} s = {rate:.0f} users/s; bare INSERT {users / bare_s:.0f} users/s")
    return [
        Row("seed", "≥ 500 users/s (with --password, funded)", f"{rate:.0f} users/s ({made} in {seed_s:.1f} s)",
            f"bare INSERT {users / bare_s:.0f} users/s", f"{rate / (users / bare_s):.3f}",
            rate >= 500 and made == users),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", default=["all"], choices=[*SCENARIOS, "all"])
    parser.add_argument("--quick", action="store_true", help="a tenth of the size: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--rows-to", help=argparse.SUPPRESS)  # internal: a child process runs one scenario
    args = parser.parse_args()
    chosen = SCENARIOS if "all" in args.scenarios else args.scenarios
    harness.WORK_DIR.mkdir(parents=True, exist_ok=True)
    if args.rows_to:  # the child: one scenario, its rows as JSON lines
        rows = globals()[f"scenario_{chosen[0]}"](args.quick)
        Path(args.rows_to).write_text("".join(json.dumps(asdict(row)) + "\n" for row in rows))
        return 0
    if not harness.port_free(harness.PORT):
        sys.exit(f"bench: port {harness.PORT} is taken; set BENCH_PORT")
    os.environ["BENCH_PG_URL"] = harness.pg_server()  # the children use the same server
    harness.machine_record()
    rows: list[Row] = []
    try:
        for name in chosen:  # each in a process of its own: its own Django, its own database, its own peak memory
            rows_file = harness.WORK_DIR / f"rows-{name}.json"
            rows_file.unlink(missing_ok=True)
            argv = [sys.executable, __file__, name, "--rows-to", str(rows_file), *(["--quick"] if args.quick else [])]
            if subprocess.run(argv).returncode or not rows_file.exists():
                rows.append(Row(name, "runs", "FAILED (see above)", "—", "—", False))
                continue
            rows += [Row(**json.loads(line)) for line in rows_file.read_text().splitlines()]
    finally:
        harness.pg_server_stop()
    harness.report(
        rows,
        title=f"make bench ({', '.join(chosen)}{', quick' if args.quick else ''})",
        write=not args.no_write and not args.quick,
    )
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
