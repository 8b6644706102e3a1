"""`make chaos`: `simulate --faults all` over a fixed set of seeds on PostgreSQL, each seed on a fresh database.

The schema is migrated once into a template database; each seed gets `CREATE DATABASE ... TEMPLATE` (a
copy in well under a second), runs in its own process, writes its summary as JSON, and the database is
dropped. Prints one table (seeds, days, faults by kind, checks run, failures); exits 1 on any failure,
with the seed, the day, the fault just before and the broken invariant, and the replay command.

    python scripts/chaos.py --seeds 20 --days 5 --bettors 100 [--live-seeds 3] [--jobs 2] [--replay SEED --day D]

--live / --live-seeds N: every seed, or N more seeds, with the bets over HTTP to a real gunicorn each starts
(`simulate --faults ... --live local`), so that `--faults all` includes web_kill (kill -9 of a gunicorn worker
mid-bet); one table over all of them.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
PYTHON = sys.executable


def psql(server: str, sql: str) -> None:
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    subprocess.run(["psql", f"{server}/postgres", "-qX", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, env=env)


def run_seed(args: argparse.Namespace, seed: int, template: str, live: bool) -> dict:
    name = f"{args.prefix}_s{seed}"
    psql(args.server, f"DROP DATABASE IF EXISTS {name}")
    psql(args.server, f"CREATE DATABASE {name} TEMPLATE {template}")
    env = {**os.environ, "DATABASE_URL": f"{args.server}/{name}", "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [PYTHON, "manage.py", "simulate", "--faults", args.faults, "--seed", str(seed)]
        command += ["--days", str(args.days), "--bettors", str(args.bettors), "--summary-json", out.name]
        if args.day:
            command += ["--replay", str(seed), "--day", str(args.day)]
        if live:
            command += ["--live", "local"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        try:
            summary = json.loads(Path(out.name).read_text() or "{}")
        except json.JSONDecodeError:
            summary = {}
    if args.keep_failed and done.returncode != 0:
        print(f"kept database {name} for the failing seed {seed}", file=sys.stderr)
    else:
        psql(args.server, f"DROP DATABASE IF EXISTS {name}")
    if not summary:  # it died before writing its summary: that is a failure too, with its output
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        summary = {"seed": seed, "days": 0, "faults": {}, "skipped": {}, "checks": 0, "fingerprint": ""}
        summary["failures"] = [f"seed {seed}: simulate exited {done.returncode}: " + " | ".join(tail)]
    summary["wall"] = wall
    summary["live"] = live
    outcome = "ok" if not summary["failures"] else "FAIL"
    mode = " (live)" if live else ""
    line = f"seed {seed}{mode}: {summary['days']} day(s), {summary['checks']} checks, {wall:.0f} s, {outcome}"
    print(line, file=sys.stderr)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--bettors", type=int, default=100)
    parser.add_argument("--faults", default="all")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run side by side (default 2: the machine's cores)")
    parser.add_argument("--replay", type=int, default=None, metavar="SEED", help="only this seed")
    parser.add_argument("--day", type=int, default=None, help="with --replay: stop after that day")
    parser.add_argument("--live", action="store_true", help="every seed's bets over HTTP to a gunicorn it starts")
    parser.add_argument(
        "--live-seeds", type=int, default=0, help="and N more seeds (after the others) in live mode: web_kill's leg"
    )
    parser.add_argument("--keep-failed", action="store_true", help="keep a failing seed's database to look at")
    parser.add_argument("--server", default=os.environ.get("CHAOS_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--prefix", default=os.environ.get("CHAOS_DB_PREFIX", "chaos"))
    args = parser.parse_args()
    started = time.monotonic()
    template = f"{args.prefix}_template"
    psql(args.server, f"DROP DATABASE IF EXISTS {template}")
    psql(args.server, f"CREATE DATABASE {template}")
    env = {**os.environ, "DATABASE_URL": f"{args.server}/{template}", "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True)
    if args.replay is not None:
        seeds = [(args.replay, args.live)]
    else:
        last = args.first_seed + args.seeds
        seeds = [(seed, args.live) for seed in range(args.first_seed, last)]
        seeds += [(seed, True) for seed in range(last, last + args.live_seeds)]
    seeds.sort(key=lambda pair: not pair[1])  # the live seeds first: they are the longest, so the pool ends evenly
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        summaries = list(pool.map(lambda pair: run_seed(args, pair[0], template, pair[1]), seeds))
    summaries.sort(key=lambda s: s["seed"])
    psql(args.server, f"DROP DATABASE IF EXISTS {template}")

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    from risk.chaos import chaos_table

    print(f"{'seed':>6} {'mode':>5} {'days':>4} {'faults':>6} {'checks':>6} {'wall s':>7}  fingerprint / failure")
    for s in summaries:
        outcome = s["fingerprint"][:16] if not s["failures"] else "FAIL"
        faults = sum(s["faults"].values())
        mode = "live" if s["live"] else "-"
        print(f"{s['seed']:>6} {mode:>5} {s['days']:>4} {faults:>6} {s['checks']:>6} {s['wall']:>7.1f}  {outcome}")
    for line in chaos_table(summaries):
        print(line)
    failed = [s for s in summaries if s["failures"]]
    print(f"chaos wall time {time.monotonic() - started:.0f} s")
    for s in failed:
        live = " LIVE=1" if s["live"] else ""
        print(f"replay: make chaos-replay SEED={s['seed']} DAYS={args.days} BETTORS={args.bettors}{live}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
