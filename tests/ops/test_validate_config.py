import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

GOOD_PRODUCTION = {
    "SECRET_KEY": "k" * 50,
    "DEPOSIT_WEBHOOK_SECRET": "w" * 40,
    "OPS_TOKEN": "t" * 32,
    "DEBUG": False,
    "ALLOWED_HOSTS": ["updown.example.com"],
    "SIMULATION_ENABLED": False,
    "ALERT_EMAIL_TO": ["oncall@example.com"],
}

# setting -> bad value -> the sentence validate_config must print
BAD = [
    ("FEE_BPS", 10_001, "FEE_BPS must be a whole number from 0 to 10000"),
    ("FEE_BPS", -1, "FEE_BPS must be a whole number from 0 to 10000"),
    ("BET_MIN_STAKE_U", 0, "BET_MIN_STAKE_U must be a positive whole number"),
    ("BET_MAX_STAKE_U", 50_000, "BET_MIN_STAKE_U must not exceed BET_MAX_STAKE_U"),
    ("OPS_HEARTBEAT_STALE_SECONDS", 10, "OPS_HEARTBEAT_STALE_SECONDS must be more than the 30 s"),
    ("ROUND_SETTLE_GRACE_SECONDS", 0, "ROUND_SETTLE_GRACE_SECONDS must be a positive number of seconds"),
    ("MARKET_TIMEZONE", "America/Nowhere", "MARKET_TIMEZONE is not a known time zone"),
    ("ALERT_WEBHOOK_MIN_SEVERITY", "P9", "ALERT_WEBHOOK_MIN_SEVERITY must be one of P0, P1, P2, P3"),
    ("ALERT_WEBHOOK_URL", "hooks.slack.com/x", "ALERT_WEBHOOK_URL must be an http(s) URL"),
    ("SECRET_KEY", "", "SECRET_KEY is not set."),
    ("SECRET_KEY", "dev-insecure-secret-key-change-me", "SECRET_KEY is the development default"),
    ("DEPOSIT_WEBHOOK_SECRET", "dev-webhook-secret", "DEPOSIT_WEBHOOK_SECRET is the development default"),
    ("SECRET_KEY", "short", "SECRET_KEY is too short for production"),
    ("OPS_TOKEN", "", "OPS_TOKEN must be set"),
    ("DEBUG", True, "DEBUG must be off in production."),
    ("ALLOWED_HOSTS", ["*"], "ALLOWED_HOSTS must list the real host names"),
    ("ALLOWED_HOSTS", [], "ALLOWED_HOSTS must list the real host names"),
    ("SIMULATION_ENABLED", True, "SIMULATION_ENABLED must be off in production"),
    ("CELERY_BROKER_URL", "filesystem://", "CELERY_BROKER_URL must be Redis or RabbitMQ"),
    ("ALERT_EMAIL_TO", [], "No alert route"),
    ("ORACLE_QUORUM", 0, "ORACLE_QUORUM must be a whole number of sources, at least 1"),
    ("ORACLE_QUORUM", 1, "ORACLE_QUORUM must be at least 2 in production"),
    ("ORACLE_MAX_DEVIATION_BPS", -1, "ORACLE_MAX_DEVIATION_BPS must be a whole number from 0 to 10000"),
    ("PRICE_TICK_STALE_SECONDS", 0, "PRICE_TICK_STALE_SECONDS must be a positive number of seconds"),
    ("PRICE_SOURCE_DOWN_FAILURES", 0, "PRICE_SOURCE_DOWN_FAILURES must be a whole number up to 10"),
]


def production(settings):
    for name, value in GOOD_PRODUCTION.items():
        setattr(settings, name, value)


def run(capsys) -> tuple[bool, str]:
    try:
        call_command("validate_config", "--deployment", "production", "--no-connect")
    except CommandError:
        return False, capsys.readouterr().out
    return True, capsys.readouterr().out


# The DATABASES override only changes what the rule reads (the ENGINE name); no connection uses it.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.parametrize(("name", "value", "sentence"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_validate_config_catches_each_bad_setting(settings, capsys, name, value, sentence):
    production(settings)
    settings.CELERY_BROKER_URL = "redis://redis:6379/0"
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"]}}
    settings.DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    # given an otherwise good production configuration
    assert run(capsys) == (True, "Validating configuration for production:\nConfiguration OK.\n")
    # when one setting is bad
    setattr(settings, name, value)
    ok, out = run(capsys)
    # then validate_config fails and names it
    assert ok is False
    assert sentence in out


def test_a_broken_configuration_lists_every_problem(settings, capsys):
    settings.FEE_BPS = 20_000
    settings.DEBUG = True
    settings.SECRET_KEY = "dev-insecure-secret-key-change-me"
    settings.ALLOWED_HOSTS = ["*"]
    with pytest.raises(CommandError, match=r"Configuration has \d+ problem"):
        call_command("validate_config", "--deployment", "production", "--no-connect")
    out = capsys.readouterr().out
    for sentence in ("FEE_BPS", "DEBUG must be off", "SECRET_KEY is the development default", "ALLOWED_HOSTS"):
        assert sentence in out


@pytest.mark.django_db
def test_unreachable_database_and_broker_are_problems(settings, capsys, monkeypatch):
    from ops import health

    monkeypatch.setattr(health, "check_database", lambda: health.Check("database", False, "refused"))
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(CommandError):
        call_command("validate_config")
    out = capsys.readouterr().out
    assert "Database is not reachable: refused" in out
    assert "Broker is not reachable: redis broker unreachable" in out


@pytest.mark.django_db
def test_development_defaults_pass():
    call_command("validate_config")


def test_check_deploy_sees_the_same_rules(settings):
    from django.core.management import call_command as run_command

    settings.DEBUG = True
    with pytest.raises(Exception, match="DEBUG must be off in production"):
        run_command("check", "--deploy", "--tag", "ops")
