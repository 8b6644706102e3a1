"""The test suite. SQLite by default; TEST_DB=postgres runs on a real PostgreSQL."""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

TEST_DB = env.str("TEST_DB", default="sqlite")
POSTGRES_UNAVAILABLE = ""
if TEST_DB == "postgres":
    from config.test_postgres import postgres_url_for_tests

    try:
        DATABASES = {"default": env.db_url_config(postgres_url_for_tests())}  # noqa: F811
        DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
    except (RuntimeError, OSError) as exc:
        if env.bool("CI", default=False):
            raise  # in CI a missing PostgreSQL is a failure, never a skip
        POSTGRES_UNAVAILABLE = str(exc)
if TEST_DB != "postgres" or POSTGRES_UNAVAILABLE:
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(env.str("TEST_SQLITE_DIR", default="/tmp"), "updown-test.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
        "TEST": {"NAME": None},
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SIMULATION_ENABLED = True
# The kill -9 proof (tests/proof/test_kill9.py) runs a real worker on a real broker with these overridden.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "1000/min"}}  # noqa: F405
# Like the throttle: generous so the suite can log in freely; tests/proof/test_login_and_debug.py sets
# production-like limits to prove the lockout.
AXES_FAILURE_LIMIT = 1000
# No start-up grace for the beat check: tests/ops/test_health.py sets one where it is the subject.
OPS_BEAT_STARTUP_GRACE_SECONDS = 0

# The backward-compatibility linter of migrations (tests/migrations/test_linter.py runs it in `make test`).
INSTALLED_APPS = [*INSTALLED_APPS, "django_migration_linter"]  # noqa: F405
# Migrations already released before the linter came: the previous release ran beside them
# once and is gone, so they are history, not a risk to a running release. Listed by migration name.
# A new migration the linter refuses is either rewritten as expand/contract or, when it is the contract
# step of one, named `NNNN_contract_<what>` (README, "Changing the schema without breaking the release
# still running"). Initial migrations create tables no running code uses yet.
RELEASED_MIGRATIONS = [
    "0003_alter_bet_round_alter_bet_user",  # betting
    "0002_intents_approval_processing",  # withdrawals
    "0003_withdrawal_idempotency_key",  # withdrawals
]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite cannot ADD a UNIQUE column or one with a database default, so Django rebuilds the table and
    # the linter reads the rebuild's copy of every NOT NULL column as new ones. PostgreSQL (production)
    # lints both clean: a nullable column, and a column with a database default.
    RELEASED_MIGRATIONS += [
        "0005_payout_reference",  # withdrawals
        "0002_actor_label",  # audit
        "0005_receipts",  # rounds
        "0006_running_totals",  # rounds: four counters with a database default (PostgreSQL lints it clean)
    ]
MIGRATION_LINTER_OPTIONS = {
    "include_apps": ["approvals", "audit", "betting", "ledger", "marketdata", "ops", "risk", "rounds", "withdrawals"],
    "ignore_initial_migrations": True,
    "ignore_name_contains": "_contract_",
    "ignore_name": RELEASED_MIGRATIONS,
    "no_cache": True,
}
# Every request reads the switches afresh (tests flip them through the ORM too); tests/ops/test_switches_read
# turns the one-second reuse of production on.
SWITCHES_READ_MAX_AGE_SECONDS = 0
