"""Settings shared by every deployment mode.

Layering: these defaults <- `.env` (if present) <- the process environment.
Every value is read here, once, through the one `env` below.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me")
# Opt-in in every mode: with DEBUG on, any 500 shows Django's technical page (traceback, paths, settings).
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "common.apps.AdminConfig",  # django.contrib.admin whose default site checks action selections
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver leaves static files to WhiteNoise, as gunicorn does: one way of serving, with DEBUG on or off.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "audit",
    "approvals",
    "betting",
    "ledger",
    "rounds",
    "withdrawals",
    "marketdata",
    "risk",
    "ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "common.logging.RequestContextMiddleware",  # a request id (X-Request-ID) and the user on every log line
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth: in maintenance the API answers 503 without touching anything else.
    "ops.maintenance.MaintenanceMiddleware",
    # The manual's KPIs (5xx rate, p95 latency) in shared cache buckets, after maintenance (its 503s are no errors).
    "ops.kpi.KpiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "common.middleware.MarketTimeZoneMiddleware",  # the admin shows America/New_York times, zone named
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns an admin login that axes refused into its lockout page (common.auth.lockout_response).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["common.template_filters"],  # {{ amount_u|usdc }} and |usdc_exact everywhere
        },
    },
]

# --- Database -------------------------------------------------------------
# Embedded default: SQLite in WAL mode. Production: DATABASE_URL=postgres://...
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the one writer; IMMEDIATE takes the write
            # lock at BEGIN so two writers queue instead of failing mid-transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "betting.User"
# django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Stored and served (API) in UTC; the admin shows datetimes in MARKET_TIMEZONE with the zone named.
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves /static/ with DEBUG off too (the admin and /api/docs/ stay styled, offline). Outside
# production it reads the apps' static folders directly, so no collectstatic is needed; production
# serves what `collectstatic` put in STATIC_ROOT.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
if WHITENOISE_USE_FINDERS:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at every start about a missing one

# --- Client address and login lockout -------------------------------------
# How many reverse proxies in front of the web processes append to X-Forwarded-For. 0 (the default):
# the header is the client's own words and is ignored; the address is REMOTE_ADDR. N: the N-th address
# from the right, the one the outermost proxy of ours saw. Required in production.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# django-axes locks logins (admin and POST /api/v1/auth/token) after AXES_FAILURE_LIMIT failures for one
# account (whatever the address) or from one address (whatever the account), for AXES_COOLOFF_MINUTES
# after the last failure. Its records live in the database, shared by every web process.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each alone: per account OR per address
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_CLIENT_IP_CALLABLE = "common.auth.client_ip"
AXES_USERNAME_CALLABLE = "common.auth.login_username"
AXES_LOCKOUT_CALLABLE = "common.auth.lockout_response"
AXES_RESET_ON_SUCCESS = False  # one good login must not wipe an address's record of guesses
# Not the "AXES: BEGIN" line on stderr of every manage.py command (a refusal is one CommandError sentence).
AXES_VERBOSE = False

# --- API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "common.schema.AutoSchema",  # names nested Input/Output serializers per view
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    # JSON nested at most 64 deep, UTF-8 only, no lone surrogates (common.parsers); forms for the browsable API.
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "common.api.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"auth": env.str("AUTH_THROTTLE_RATE", default="10/min")},
    # The throttles' client address: REMOTE_ADDR, or X-Forwarded-For only as far as our own proxies wrote it.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
from common.schema_tags import TAGS as _API_TAGS  # noqa: E402 - plain data, no Django import

SPECTACULAR_SETTINGS = {
    "TITLE": "Up/Down House API",
    "DESCRIPTION": "Daily parimutuel Up/Down market on the NASDAQ close. Amounts are integer micro-USDC (`_u`).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package: no CDN. (No Redoc: its page loads fonts and a logo
    # from outside whatever the dist.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Operations grouped by area with a description each (common.schema.AutoSchema tags them).
    "TAGS": [{"name": name, "description": text} for name, text in _API_TAGS.items()],
    # Several models have a `status`: name each choice set after its model, not a hash.
    "ENUM_NAME_OVERRIDES": {
        "BetStatusEnum": "betting.models.Bet.Status",
        "RoundStatusEnum": "rounds.models.Round.Status",
    },
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# GET /rounds/current from the cache, invalidated by every change (rounds.selectors.round_current_cached).
# Only with a cache every web process shares (production's Redis sets it on): a per-process cache
# would let one worker show a pool another has since raised.
ROUND_SUMMARY_CACHE = env.bool("ROUND_SUMMARY_CACHE", default=False)
ROUND_SUMMARY_CACHE_SECONDS = env.int("ROUND_SUMMARY_CACHE_SECONDS", default=60)

# --- Celery ---------------------------------------------------------------
# Embedded default: kombu's filesystem transport, no server to install.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    (CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Product --------------------------------------------------------------
MARKET_SYMBOL = env.str("MARKET_SYMBOL", default="NDX")
MARKET_TIMEZONE = "America/New_York"
FEE_BPS = env.int("FEE_BPS", default=100)
SIMULATION_ENABLED = env.bool("SIMULATION_ENABLED", default=False)
DEPOSIT_WEBHOOK_SECRET = env.str("DEPOSIT_WEBHOOK_SECRET", default="dev-webhook-secret")
OPS_TOKEN = env.str("OPS_TOKEN", default="")
# One ledger movement can never exceed this (10^12 u = 1 000 000 USDC).
MAX_AMOUNT_U = env.int("MAX_AMOUNT_U", default=1_000_000_000_000)
BET_MIN_STAKE_U = env.int("BET_MIN_STAKE_U", default=100_000)
BET_MAX_STAKE_U = env.int("BET_MAX_STAKE_U", default=10_000_000_000)
BET_MAX_USER_ROUND_STAKE_U = env.int("BET_MAX_USER_ROUND_STAKE_U", default=50_000_000_000)
# The three BET_* values above are the risk limits only until staff first set them (admin "Risk limits",
# `manage.py risk_limits`): from then on the risk_limits row rules, with no restart.
# A process reloads its in-memory copy of the limits on a change's new version in the cache, and at
# the latest after this many seconds (processes that do not share the cache: the embedded LocMemCache).
RISK_LIMITS_MAX_AGE_SECONDS = env.float("RISK_LIMITS_MAX_AGE_SECONDS", default=10.0)
# Self-exclusion through the API: at least one day, at most about five years.
SELF_EXCLUSION_MAX_DAYS = env.int("SELF_EXCLUSION_MAX_DAYS", default=1830)

# --- Deposits and withdrawals (withdrawals app) ------------------------------
# Webhook: X-Signature = "sha256=" + HMAC-SHA256(raw body, DEPOSIT_WEBHOOK_SECRET); its signed
# "timestamp" must be within this many seconds of now (older deliveries are replays).
DEPOSIT_WEBHOOK_TOLERANCE_SECONDS = env.int("DEPOSIT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Where bettors send USDC (deposit intents' EIP-681 URI): the custody address, the token, the chain.
DEPOSIT_ADDRESS = env.str("DEPOSIT_ADDRESS", default="0x00000000000000000000000000000000000d0d05")
DEPOSIT_TOKEN_ADDRESS = env.str("DEPOSIT_TOKEN_ADDRESS", default="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
DEPOSIT_CHAIN_ID = env.int("DEPOSIT_CHAIN_ID", default=1)
WITHDRAWAL_MIN_U = env.int("WITHDRAWAL_MIN_U", default=100_000)  # 0.1 USDC
WITHDRAWAL_MAX_U = env.int("WITHDRAWAL_MAX_U", default=50_000_000_000)  # 50 000 USDC per request
WITHDRAWAL_MAX_PER_DAY_U = env.int("WITHDRAWAL_MAX_PER_DAY_U", default=100_000_000_000)  # per user, rolling 24 h
# Four-eyes: above this a withdrawal waits for staff approval (1 or 2 approvers, never the requester).
WITHDRAWAL_APPROVAL_THRESHOLD_U = env.int("WITHDRAWAL_APPROVAL_THRESHOLD_U", default=10_000_000_000)
WITHDRAWAL_APPROVALS_REQUIRED = env.int("WITHDRAWAL_APPROVALS_REQUIRED", default=1)
# Four eyes (approvals): a request for a second person's approval expires after this (a held
# withdrawal's after WITHDRAWAL_APPROVAL_EXPIRY_SECONDS; the bettor may cancel it meanwhile).
APPROVAL_EXPIRY_SECONDS = env.int("APPROVAL_EXPIRY_SECONDS", default=24 * 3600)
WITHDRAWAL_APPROVAL_EXPIRY_SECONDS = env.int("WITHDRAWAL_APPROVAL_EXPIRY_SECONDS", default=7 * 24 * 3600)
# A manual ledger credit or debit above this needs a second person (runbook: discrepancies > $1000 -> management).
# Receipts: a bettor's pseudonym in a round's Merkle leaves is HMAC(this, "<round>:<user id>"). Keep it
# secret and never change it (published roots would no longer match re-derived leaves).
RECEIPT_PSEUDONYM_SECRET = env.str("RECEIPT_PSEUDONYM_SECRET", default=f"receipts:{SECRET_KEY}")
FOUR_EYES_THRESHOLD_U = env.int("FOUR_EYES_THRESHOLD_U", default=1_000_000_000)
# A newly registered payout address receives a staff-requested withdrawal without approval only after this.
PAYOUT_ADDRESS_COOLING_OFF_HOURS = env.int("PAYOUT_ADDRESS_COOLING_OFF_HOURS", default=24)
WITHDRAWAL_BATCH_SIZE = env.int("WITHDRAWAL_BATCH_SIZE", default=50)
# A PROCESSING withdrawal whose worker went quiet this long is resumed (status first, then send).
WITHDRAWAL_PROCESSING_LEASE_SECONDS = env.int("WITHDRAWAL_PROCESSING_LEASE_SECONDS", default=300)
# A withdrawal flagged for reconciliation ("mark failed" while it may be in flight) that the custodian still
# does not know this long after its last send is taken as never received, and refunded. Longer than any
# send can take to land (PAYOUT_HTTP_TIMEOUT_SECONDS plus the custodian's own queueing).
WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS = env.int("WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS", default=3600)
# Payout adapter: "simulated" (default), "http", or a dotted path to a class.
PAYOUT_ADAPTER = env.str("PAYOUT_ADAPTER", default="simulated")
PAYOUT_HTTP_URL = env.str("PAYOUT_HTTP_URL", default="")
PAYOUT_HTTP_TOKEN = env.str("PAYOUT_HTTP_TOKEN", default="")
PAYOUT_HTTP_TIMEOUT_SECONDS = env.float("PAYOUT_HTTP_TIMEOUT_SECONDS", default=10.0)
PAYOUT_SIMULATED_FAILURE_RATE = env.float("PAYOUT_SIMULATED_FAILURE_RATE", default=0.0)
PAYOUT_SIMULATED_DELAY_SECONDS = env.float("PAYOUT_SIMULATED_DELAY_SECONDS", default=0.0)

# --- Operations (ops app) ----------------------------------------------------
# Migrations (the `migrate` command only, PostgreSQL): wait this long for a table lock, then fail with a
# sentence, so a migration stuck behind a long transaction never queues every bet behind its lock.
MIGRATION_LOCK_TIMEOUT = env.float("MIGRATION_LOCK_TIMEOUT", default=5.0)
# /health asks the migration graph what is pending at most this often per process.
MIGRATION_STATUS_CACHE_SECONDS = env.float("MIGRATION_STATUS_CACHE_SECONDS", default=10.0)
# Readiness: the beat writes a heartbeat every 30 s; older than this is "stale".
OPS_HEARTBEAT_STALE_SECONDS = env.int("OPS_HEARTBEAT_STALE_SECONDS", default=180)
# For this long after the web process starts, a beat that has not beaten since reports "starting", not failed.
OPS_BEAT_STARTUP_GRACE_SECONDS = env.int("OPS_BEAT_STARTUP_GRACE_SECONDS", default=90)
# Circuit breaker thresholds (each rule is one function in ops/rules.py).
OPS_BREAKER_HOUSE_LOSS_U = env.int("OPS_BREAKER_HOUSE_LOSS_U", default=10_000_000_000)  # 24 h house loss
OPS_BREAKER_WITHDRAWAL_FAILURE_RATE = env.float("OPS_BREAKER_WITHDRAWAL_FAILURE_RATE", default=0.5)
OPS_BREAKER_WITHDRAWAL_MIN_COUNT = env.int("OPS_BREAKER_WITHDRAWAL_MIN_COUNT", default=5)
OPS_BREAKER_REJECTION_RATE = env.float("OPS_BREAKER_REJECTION_RATE", default=0.5)
OPS_BREAKER_REJECTION_MIN_COUNT = env.int("OPS_BREAKER_REJECTION_MIN_COUNT", default=20)
OPS_BREAKER_STAKE_SHARE = env.float("OPS_BREAKER_STAKE_SHARE", default=0.8)
OPS_BREAKER_STAKE_SHARE_MIN_POOL_U = env.int("OPS_BREAKER_STAKE_SHARE_MIN_POOL_U", default=1_000_000_000)
OPS_BREAKER_WINDOW_SECONDS = env.int("OPS_BREAKER_WINDOW_SECONDS", default=3600)
# The manual's KPIs (ops.kpi, ops.rules): over OPS_KPI_WINDOW_SECONDS, with at least OPS_KPI_MIN_REQUESTS
# API responses, the breaker opens on a 5xx rate above 1 % (P1) or a p95 above 500 ms (P2); on database
# connections above 90 % of the server's (or OPS_KPI_DB_POOL_MAX) (P1); on a settlement slower than 60 s (P1).
OPS_KPI_WINDOW_SECONDS = env.int("OPS_KPI_WINDOW_SECONDS", default=300)
OPS_KPI_MIN_REQUESTS = env.int("OPS_KPI_MIN_REQUESTS", default=100)
OPS_KPI_FLUSH_SECONDS = env.float("OPS_KPI_FLUSH_SECONDS", default=1.0)
OPS_KPI_ERROR_RATE = env.float("OPS_KPI_ERROR_RATE", default=0.01)
OPS_KPI_P95_MS = env.int("OPS_KPI_P95_MS", default=500)
OPS_KPI_DB_POOL_USE = env.float("OPS_KPI_DB_POOL_USE", default=0.9)
OPS_KPI_DB_POOL_MAX = env.int("OPS_KPI_DB_POOL_MAX", default=0)  # 0: the server's max_connections
OPS_KPI_SETTLEMENT_SECONDS = env.float("OPS_KPI_SETTLEMENT_SECONDS", default=60.0)
# Alerts: routes (email, Slack-compatible webhook), minimum severity per route (P0 most severe).
ALERT_EMAIL_TO = env.list("ALERT_EMAIL_TO", default=[])
ALERT_EMAIL_MIN_SEVERITY = env.str("ALERT_EMAIL_MIN_SEVERITY", default="P1")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_MIN_SEVERITY = env.str("ALERT_WEBHOOK_MIN_SEVERITY", default="P3")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
ALERT_RENOTIFY_SECONDS = env.int("ALERT_RENOTIFY_SECONDS", default=3600)
ALERT_WITHDRAWAL_BACKLOG_SECONDS = env.int("ALERT_WITHDRAWAL_BACKLOG_SECONDS", default=3600)
ALERT_WITHDRAWAL_FAILURE_BURST = env.int("ALERT_WITHDRAWAL_FAILURE_BURST", default=3)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="updown-house@localhost")
# Backups: timestamped dumps + .sha256 files. `restore` runs only in maintenance mode, once nothing
# has written to the database for RESTORE_QUIET_SECONDS, and only after its loss list is confirmed.
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(VAR_DIR / "backups")))
RESTORE_QUIET_SECONDS = env.int("RESTORE_QUIET_SECONDS", default=30)
# A GET's maintenance check may take its web process's read of the switches this recent (seconds);
# writes (bets, withdrawals, webhooks) always read them afresh. 0: every request reads them.
SWITCHES_READ_MAX_AGE_SECONDS = env.float("SWITCHES_READ_MAX_AGE_SECONDS", default=1.0)
# Maintenance: the Retry-After (seconds) of the API's 503 `maintenance` answers.
MAINTENANCE_RETRY_AFTER_SECONDS = env.int("MAINTENANCE_RETRY_AFTER_SECONDS", default=120)
# Prometheus multiprocess mode (gunicorn): config/gunicorn.py sets and wipes this directory.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# Rounds: a LOCKED round not settled by settle_at + this grace is overdue (rounds.selectors.rounds_overdue):
# the beat stops retrying AUTO and marks it for a human, and the alerts, the circuit breaker and /health
# report it.
ROUND_SETTLE_GRACE_SECONDS = env.int("ROUND_SETTLE_GRACE_SECONDS", default=300)
# The price oracle AUTO settlement asks (marketdata.oracle.PriceOracle).
PRICE_ORACLE = env.str("PRICE_ORACLE", default="marketdata.oracle.QuorumOracle")
# Quorum (marketdata.quorum): a close is accepted when this many fresh quotes of enabled sources agree
# within ORACLE_MAX_DEVIATION_BPS of each other. Fresh: stamped at or after that day's close (13:00 ET on
# an early close), at most ORACLE_CLOSE_ALLOWANCE_SECONDS after it, and not in the future.
ORACLE_QUORUM = env.int("ORACLE_QUORUM", default=2)
ORACLE_MAX_DEVIATION_BPS = env.int("ORACLE_MAX_DEVIATION_BPS", default=5)
ORACLE_CLOSE_ALLOWANCE_SECONDS = env.int("ORACLE_CLOSE_ALLOWANCE_SECONDS", default=6 * 3600)
# The beat retries AUTO for a round already marked overdue, asking its sources at most this often.
ORACLE_OVERDUE_RETRY_SECONDS = env.int("ORACLE_OVERDUE_RETRY_SECONDS", default=300)
# Ingestion (ingest_prices, beat every 60 s in config/schedule.py): symbols polled; a failing source waits
# PRICE_INGEST_SECONDS * 2^(failures-1) (at most 15 min) before it is asked again; a tick older than
# PRICE_TICK_STALE_SECONDS during market hours is a stale feed; a source is down after this many failures.
PRICE_SYMBOLS = env.list("PRICE_SYMBOLS", default=["NDX"])
PRICE_INGEST_SECONDS = env.int("PRICE_INGEST_SECONDS", default=60)
PRICE_TICK_STALE_SECONDS = env.int("PRICE_TICK_STALE_SECONDS", default=300)  # the runbook's price-update lag
PRICE_SOURCE_DOWN_FAILURES = env.int("PRICE_SOURCE_DOWN_FAILURES", default=3)
PRICE_FETCH_RETRIES = env.int("PRICE_FETCH_RETRIES", default=1)
# A CSV source may read a file (file://...) only inside this folder.
PRICE_FILE_DIR = env.str("PRICE_FILE_DIR", default=str(VAR_DIR / "prices"))
# Retention (archive_ticks, nightly): ticks older than this go, their days kept in price_tick_daily.
PRICE_TICK_RETENTION_DAYS = env.int("PRICE_TICK_RETENTION_DAYS", default=30)

# Logs: LOG_FORMAT=plain (default) or json (one JSON object a line: time, level, logger, message, request_id,
# user, round, bet; python-json-logger). 4xx answers are one access line each (django.server under runserver,
# gunicorn's access log), not a second WARNING from django.request; 5xx keep their ERROR with the traceback.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "common.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {
            "()": "common.logging.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user)s %(round)s %(bet)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
