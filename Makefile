# The two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# `make test QUICK=1` leaves out the tests marked slow; CI runs everything.
QUICK_FILTER := $(if $(QUICK), and not slow,)
PYTEST_ARGS ?=

.PHONY: system-deps install run demo web worker test test-sqlite test-postgres lint bench migrate

# PostgreSQL, Redis, Chromium and wrk (and Python 3.11) when missing: apt-get as root, sudo otherwise.
system-deps:
	@bash scripts/system-deps.sh

$(STAMP): requirements.txt requirements-dev.txt | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

install: system-deps $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# Embedded mode: SQLite (WAL) + filesystem broker; web + one worker with beat. Ctrl-C stops all.
run: migrate
	$(BIN)/python manage.py seed --demo --users 0
	$(BIN)/python manage.py sync_schedule
	bash scripts/run-all.sh

# `make run` with data: first the last 30 trading days played by 100 synthetic bettors (simulate, through the
# real services on a travelled clock), so the dashboard's charts have something to show. Days already played are skipped.
DEMO_DAYS ?= 30
DEMO_BETTORS ?= 100
demo: migrate
	$(BIN)/python manage.py simulate --days $(DEMO_DAYS) --bettors $(DEMO_BETTORS) --seed 1
	$(MAKE) run

test: install
	$(MAKE) test-sqlite test-postgres

# The SQLite pass runs on two processes (each its own in-memory database); the PostgreSQL pass stays in
# one, so its races and kill -9 proofs have the machine's second core to themselves.
SQLITE_WORKERS ?= 2

test-sqlite: install
	$(BIN)/pytest -n $(SQLITE_WORKERS) -m "not postgres$(QUICK_FILTER)" $(PYTEST_ARGS)

test-postgres: install
	TEST_DB=postgres $(BIN)/pytest -m "(money or postgres)$(QUICK_FILTER)" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Benchmarks (never part of `make test`): bench/bench.py prints goal, figure, baseline and ratio for each
# and appends the table to bench/RESULTS.md. BENCH_ARGS=--quick for a smoke run at a tenth of the size.
BENCH := $(BIN)/python bench/bench.py
.PHONY: bench-bets bench-reads bench-settle bench-audit bench-seed bench-candles bench-dashboard bench-receipts

# Every scenario runs even when one misses its goal (bench.py exits 1 then); `make bench` fails at the end if one did.
bench: install
	status=0; $(BENCH) all $(BENCH_ARGS) || status=1; \
	$(MAKE) bench-candles bench-dashboard bench-receipts || status=1; exit $$status

bench-bets: install
	$(BENCH) bets $(BENCH_ARGS)

bench-reads: install
	$(BENCH) reads $(BENCH_ARGS)

bench-settle: install
	$(BENCH) settle $(BENCH_ARGS)

bench-audit: install
	$(BENCH) audit $(BENCH_ARGS)

bench-seed: install
	$(BENCH) seed $(BENCH_ARGS)

# The 1h candle query over 1 000 000 ticks (marketdata), one terminal-dashboard refresh at 1 000 000 bets and
# 10 000 000 ledger entries, the receipts' Merkle root per 100 000 bets.
bench-candles: install
	$(BIN)/python bench/candles_bench.py

bench-dashboard: install
	$(BIN)/python bench/dashboard_bench.py

bench-receipts: install
	$(BIN)/python bench/receipts_bench.py

# The runbook's status step (README, "Deploy and roll back"): every migration, then the one-line summary.
# Chaos days (risk.chaos): `simulate --faults all` over SEEDS seeds x DAYS days x BETTORS bettors on PostgreSQL,
# each seed on a fresh database (CHAOS_PG, CHAOS_DB_PREFIX); a table of faults by kind, checks and failures.
# `make chaos DAYS=250` is the long run; `make chaos-replay SEED=7 DAY=3` plays one seed again up to that day.
# LIVE_SEEDS more seeds play in live mode (the bets over HTTP to a real gunicorn each starts), where `all`
# includes web_kill; `make chaos-replay SEED=21 LIVE=1` replays one of those.
SEEDS ?= 20
LIVE_SEEDS ?= 3
DAYS ?= 5
BETTORS ?= 100
CHAOS_JOBS ?= 2
.PHONY: chaos chaos-replay
chaos: install
	$(BIN)/python scripts/chaos.py --seeds $(SEEDS) --live-seeds $(LIVE_SEEDS) --days $(DAYS) --bettors $(BETTORS) --jobs $(CHAOS_JOBS)

chaos-replay: install
	$(BIN)/python scripts/chaos.py --replay $(SEED) --days $(DAYS) --bettors $(BETTORS) $(if $(DAY),--day $(DAY),) $(if $(LIVE),--live,) --keep-failed

.PHONY: db-migration-status
db-migration-status: install
	$(BIN)/python manage.py showmigrations
	$(BIN)/python manage.py migration_status
