"""`.env.example` lists exactly the variables the settings read, and validate_config names the others."""

import ast
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ops.env_vars import ENV_EXAMPLE, SETTINGS_DIR, env_example_names, env_example_text, settings_env_vars


def _names_read_by_settings() -> set[str]:
    """Independently of ops.env_vars: the first string argument of every `env.<x>(...)` call in the settings."""
    names = set()
    for filename in ("base.py", "local.py", "production.py"):
        tree = ast.parse((SETTINGS_DIR / filename).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def test_env_example_lists_exactly_the_variables_the_settings_read():
    listed = env_example_names(ENV_EXAMPLE.read_text())
    assert len(listed) == len(set(listed))
    assert set(listed) == _names_read_by_settings()
    assert {"SECRET_KEY", "DATABASE_URL", "FEE_BPS", "OPS_HEARTBEAT_STALE_SECONDS", "CACHE_URL"} <= set(listed)


def test_env_example_is_the_generated_one():
    assert ENV_EXAMPLE.read_text() == env_example_text(), "run `python scripts/env_example.py`"


def test_each_variable_says_its_type_and_defaults_and_every_line_is_commented_out():
    text = ENV_EXAMPLE.read_text()
    assert '# SECRET_KEY (str; base default "dev-insecure-secret-key-change-me"; production: required)' in text
    assert "# SIMULATION_ENABLED (bool; base default False; local default True; production default False)" in text
    assert '# Readiness: the beat writes a heartbeat every 30 s; older than this is "stale".' in text
    assert all(line == "" or line.startswith("#") for line in text.splitlines())
    assert [var.name for var in settings_env_vars()][:2] == ["VAR_DIR", "SECRET_KEY"]


def test_validate_config_names_a_misspelt_variable_and_suggests_the_real_one(monkeypatch):
    monkeypatch.setenv("OPS_HEARTBEAT_STALE_SECOND", "60")
    monkeypatch.setenv("HOME_PAGE_COLOUR", "red")  # not one of our prefixes: not ours to judge
    out = StringIO()
    with pytest.raises(CommandError, match=r"1 problem\(s\)"):
        call_command("validate_config", "--no-connect", stdout=out)
    assert (
        "OPS_HEARTBEAT_STALE_SECOND is set but no setting reads it (did you mean OPS_HEARTBEAT_STALE_SECONDS?); "
        "see .env.example." in out.getvalue()
    )
    assert "HOME_PAGE_COLOUR" not in out.getvalue()


def test_validate_config_is_quiet_about_the_variables_settings_read(monkeypatch):
    monkeypatch.setenv("OPS_HEARTBEAT_STALE_SECONDS", "60")
    out = StringIO()
    call_command("validate_config", "--no-connect", stdout=out)
    assert "Configuration OK." in out.getvalue()
