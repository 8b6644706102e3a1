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
