"""`risk_limits`: show, change with a reason (audited), per-user overrides; bad input is a sentence."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from risk.models import RiskLimits, UserLimit
from risk.selectors import house_limits_get
from tests.factories import UserFactory, role_user


def _run(*args: str) -> str:
    out = StringIO()
    call_command("risk_limits", *args, stdout=out)
    return out.getvalue()


def test_show_then_change_with_a_reason(db):
    shown = _run()
    assert "the BET_* settings (never changed)" in shown
    assert "max_stake_u          10000000000 u (10,000.00 USDC)" in shown
    changed = _run("--set", "max_round_pool_u=5000000000", "--set", "max_side_ratio=4", "--reason", "launch caps")
    assert "effective on the next bet" in changed
    limits = house_limits_get()
    assert (limits.max_round_pool_u, limits.max_side_ratio) == (5_000_000_000, 4)
    event = AuditEvent.objects.get(action="risk.limits.change")
    assert (event.source, event.reason, event.actor_label.startswith("os:")) == ("cli", "launch caps", True)
    _run("--set", "max_round_pool_u=none", "--reason", "lift the cap")
    assert house_limits_get().max_round_pool_u is None


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--set", "max_stake_u=5000000"], "[reason_required]"),
        (["--set", "bogus=1", "--reason", "x"], "[invalid_limit]"),
        (["--set", "min_stake_u=none", "--reason", "x"], "cannot be switched off"),
        (["--set", "max_stake_u=-1", "--reason", "x"], "must be positive"),
        (["--set", "max_stake_u", "--reason", "x"], "NAME=VALUE"),
        (["--set", "max_stake_u=10", "--reason", "x"], "[invalid_limit]"),
        (["--set", "max_stake_u=5000000", "--reason", "x", "--actor", "nobody@example.com"], "not the email"),
        (
            ["--user", "nobody@example.com", "--until", "2099-01-01", "--max-stake-u", "0", "--reason", "x"],
            "[unknown_user]",
        ),
    ],
)
def test_bad_input_is_a_sentence_and_changes_nothing(db, args, text):
    with pytest.raises(CommandError) as refused:
        _run(*args)
    assert text in str(refused.value)
    assert not RiskLimits.objects.exists() and not UserLimit.objects.exists()


def test_the_auditor_as_actor_is_refused(db):
    auditor = role_user("auditor")
    with pytest.raises(CommandError) as refused:
        _run("--set", "max_stake_u=5000000", "--reason", "x", "--actor", auditor.email)
    assert "[permission_denied]" in str(refused.value)


def test_a_per_user_override_by_command(db):
    maker = UserFactory(email="maker@example.com")
    out = _run("--user", "maker@example.com", "--until", "2099-01-01", "--max-stake-u", "50000000000", "--reason", "MM")
    assert "Override for maker@example.com" in out
    assert "maker@example.com" in out.split("Per-user overrides in force: 1")[1]
    override = UserLimit.objects.get(user=maker)
    assert (override.max_stake_u, override.max_user_round_u) == (50_000_000_000, None)
    with pytest.raises(CommandError, match="--until"):
        _run("--user", "maker@example.com", "--max-stake-u", "1", "--reason", "x")
