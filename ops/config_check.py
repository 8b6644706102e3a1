"""Configuration rules, shared by `validate_config` and the Django system checks (`check --deploy`).

Each rule is a small function `(settings, production) -> list[str]` (problem sentences).
"""

import os
import zoneinfo
from collections.abc import Callable

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from ops import health
from ops.migration_state import PENDING_CODE, migrations_pending

DEV_DEFAULTS = {
    "SECRET_KEY": "dev-insecure-secret-key-change-me",
    "DEPOSIT_WEBHOOK_SECRET": "dev-webhook-secret",
}
SEVERITIES = ("P0", "P1", "P2", "P3")


def _int(settings, name: str):
    value = getattr(settings, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rule_fee(settings, production: bool) -> list[str]:
    fee = _int(settings, "FEE_BPS")
    if fee is None or not 0 <= fee <= 10_000:
        return [f"FEE_BPS must be a whole number from 0 to 10000 (basis points), got {settings.FEE_BPS!r}."]
    return []


def rule_amounts(settings, production: bool) -> list[str]:
    problems = []
    names = ["MAX_AMOUNT_U", "BET_MIN_STAKE_U", "BET_MAX_STAKE_U", "BET_MAX_USER_ROUND_STAKE_U"]
    values = {name: _int(settings, name) for name in names}
    for name, value in values.items():
        if value is None or value <= 0:
            problems.append(f"{name} must be a positive whole number of micro-USDC, got {getattr(settings, name)!r}.")
    if not problems:
        if values["BET_MIN_STAKE_U"] > values["BET_MAX_STAKE_U"]:
            problems.append("BET_MIN_STAKE_U must not exceed BET_MAX_STAKE_U.")
        if values["BET_MAX_STAKE_U"] > values["MAX_AMOUNT_U"]:
            problems.append("BET_MAX_STAKE_U must not exceed MAX_AMOUNT_U.")
    return problems


def rule_times(settings, production: bool) -> list[str]:
    problems = []
    for name in (
        "ALERT_RENOTIFY_SECONDS",
        "ROUND_SETTLE_GRACE_SECONDS",
        "OPS_BREAKER_WINDOW_SECONDS",
        "RESTORE_QUIET_SECONDS",
        "MAINTENANCE_RETRY_AFTER_SECONDS",
        "ORACLE_CLOSE_ALLOWANCE_SECONDS",
        "ORACLE_OVERDUE_RETRY_SECONDS",
        "PRICE_INGEST_SECONDS",
        "PRICE_TICK_STALE_SECONDS",
        "PRICE_TICK_RETENTION_DAYS",
    ):
        if hasattr(settings, name) and (_int(settings, name) is None or getattr(settings, name) <= 0):
            problems.append(f"{name} must be a positive number of seconds, got {getattr(settings, name)!r}.")
    stale = _int(settings, "OPS_HEARTBEAT_STALE_SECONDS")
    if stale is None or stale <= 30:
        problems.append(f"OPS_HEARTBEAT_STALE_SECONDS must be more than the 30 s heartbeat interval, got {stale!r}.")
    for name in ("MARKET_TIMEZONE", "TIME_ZONE"):
        try:
            zoneinfo.ZoneInfo(str(getattr(settings, name, "")))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"{name} is not a known time zone: {getattr(settings, name, '')!r}.")
    return problems


def rule_oracle(settings, production: bool) -> list[str]:
    problems = []
    quorum = _int(settings, "ORACLE_QUORUM")
    if quorum is None or quorum < 1:
        problems.append(f"ORACLE_QUORUM must be a whole number of sources, at least 1, got {settings.ORACLE_QUORUM!r}.")
    elif production and quorum < 2:
        problems.append("ORACLE_QUORUM must be at least 2 in production: one source alone is no verification.")
    deviation = _int(settings, "ORACLE_MAX_DEVIATION_BPS")
    if deviation is None or not 0 <= deviation <= 10_000:
        problems.append(
            f"ORACLE_MAX_DEVIATION_BPS must be a whole number from 0 to 10000 (basis points), "
            f"got {settings.ORACLE_MAX_DEVIATION_BPS!r}."
        )
    for name in ("PRICE_SOURCE_DOWN_FAILURES", "PRICE_FETCH_RETRIES"):
        value = _int(settings, name)
        if value is None or value < (1 if name == "PRICE_SOURCE_DOWN_FAILURES" else 0) or value > 10:
            problems.append(f"{name} must be a whole number up to 10, got {getattr(settings, name)!r}.")
    return problems


# Settings that were read once and are not any more: set in the environment, they would look honoured.
RETIRED = {
    "OPS_SETTLEMENT_GRACE_SECONDS": "overdue rounds use ROUND_SETTLE_GRACE_SECONDS (one grace for the beat, the "
    "alerts, the circuit breaker and /health)",
}


def rule_retired(settings, production: bool) -> list[str]:
    return [
        f"{name} is set in the environment but no longer used: {why}; remove it."
        for name, why in RETIRED.items()
        if name in os.environ
    ]


def rule_alerts(settings, production: bool) -> list[str]:
    problems = []
    for name in ("ALERT_EMAIL_MIN_SEVERITY", "ALERT_WEBHOOK_MIN_SEVERITY"):
        if getattr(settings, name, "P3") not in SEVERITIES:
            problems.append(f"{name} must be one of P0, P1, P2, P3, got {getattr(settings, name)!r}.")
    url = getattr(settings, "ALERT_WEBHOOK_URL", "")
    if url and not url.startswith(("http://", "https://")):
        problems.append(f"ALERT_WEBHOOK_URL must be an http(s) URL, got {url!r}.")
    if production and not (getattr(settings, "ALERT_EMAIL_TO", None) or url):
        problems.append("No alert route: set ALERT_EMAIL_TO or ALERT_WEBHOOK_URL so P0/P1 alerts reach someone.")
    return problems


def rule_secrets(settings, production: bool) -> list[str]:
    problems = []
    for name in ("SECRET_KEY", "DEPOSIT_WEBHOOK_SECRET"):
        try:
            value = getattr(settings, name, "") or ""
        except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
            value = ""
        if not value:
            problems.append(f"{name} is not set.")
        elif production and value == DEV_DEFAULTS[name]:
            problems.append(f"{name} is the development default; set a real secret in production.")
        elif production and len(value) < 32:
            problems.append(f"{name} is too short for production (at least 32 characters).")
    if production and len(getattr(settings, "OPS_TOKEN", "") or "") < 16:
        problems.append("OPS_TOKEN must be set (at least 16 characters) in production: /metrics and the ops API.")
    return problems


def rule_deployment(settings, production: bool) -> list[str]:
    if not production:
        return []
    problems = []
    if settings.DEBUG:
        problems.append("DEBUG must be off in production.")
    hosts = list(getattr(settings, "ALLOWED_HOSTS", []) or [])
    if not hosts or "*" in hosts:
        problems.append(f"ALLOWED_HOSTS must list the real host names in production, got {hosts!r}.")
    if getattr(settings, "SIMULATION_ENABLED", False):
        problems.append("SIMULATION_ENABLED must be off in production (it credits deposits without money).")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append("DATABASE_URL must point at PostgreSQL in production (SQLite is the embedded mode).")
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if broker.startswith(("filesystem://", "memory://")):
        problems.append("CELERY_BROKER_URL must be Redis or RabbitMQ in production, not the embedded broker.")
    return problems


def rule_proxies(settings, production: bool) -> list[str]:
    """The login throttle and lockout identify clients by the address TRUSTED_PROXY_COUNT picks."""
    count = _int(settings, "TRUSTED_PROXY_COUNT")
    if count is None or count < 0:
        return [
            "TRUSTED_PROXY_COUNT must be the number of proxies in front of the web processes (0 if none), "
            f"got {getattr(settings, 'TRUSTED_PROXY_COUNT', None)!r}."
        ]
    if settings.REST_FRAMEWORK.get("NUM_PROXIES") != count:
        return ["REST_FRAMEWORK['NUM_PROXIES'] must equal TRUSTED_PROXY_COUNT (the throttles' client address)."]
    return []


def rule_database_reachable(settings, production: bool) -> list[str]:
    check = health.check_database()
    return [] if check.ok else [f"Database is not reachable: {check.detail}"]


def rule_broker_reachable(settings, production: bool) -> list[str]:
    check = health.check_broker()
    return [] if check.ok else [f"Broker is not reachable: {check.detail}"]


def rule_migrations_applied(settings, production: bool) -> list[str]:
    pending = migrations_pending()
    if not pending:
        return []
    return [
        f"{PENDING_CODE}: the database lacks {len(pending)} migration(s) this code needs: {', '.join(pending)}. "
        "Run `python manage.py migrate` (README, Deploy and roll back)."
    ]


STATIC_RULES: list[Callable] = [
    rule_fee,
    rule_amounts,
    rule_times,
    rule_oracle,
    rule_alerts,
    rule_secrets,
    rule_deployment,
    rule_proxies,
    rule_retired,
]
REACHABILITY_RULES: list[Callable] = [rule_database_reachable, rule_broker_reachable]
# validate_config also names pending migrations; `check --deploy` does not, because a deploy runs it
# before `migrate` (README, Deploy and roll back), when the new migrations are pending by design.
CONNECTION_RULES: list[Callable] = [*REACHABILITY_RULES, rule_migrations_applied]


def deployment_default() -> str:
    return "production" if os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production") else "development"


def config_problems(*, deployment: str | None = None, connections: bool = True) -> list[str]:
    production = (deployment or deployment_default()) == "production"
    problems = []
    for rule in STATIC_RULES + (CONNECTION_RULES if connections else []):
        try:
            problems.extend(rule(django_settings, production))
        except Exception as exc:  # noqa: BLE001 - a rule that crashes is a problem to report, not a traceback
            problems.append(f"{rule.__name__} could not run: {type(exc).__name__}: {exc}")
    return problems
