"""The operator commands of the House Operating Manual: happy paths and refusals."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from betting.models import User
from ledger.models import Account, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from withdrawals.models import Withdrawal

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_creates_bettors_with_cash_accounts_and_prints_them():
    output = run("seed", "--users", "3", "--fund", "2000000")
    bettors = User.objects.filter(email__startswith="bettor")
    assert bettors.count() == 3
    for user in bettors:
        assert user.email in output
        assert account_balance_u(code=Account.user_cash_code(user.pk)) == 2_000_000
    assert "Created 3 bettor(s)." in output
    assert tvl_get().cash_u == 6_000_000


def test_seed_demo_is_rerunnable():
    run("seed", "--demo", "--users", "0")
    run("seed", "--demo", "--users", "0")
    assert User.objects.filter(email="admin@example.com", is_superuser=True).count() == 1


def test_seed_demo_alone_adds_no_bettor_however_often_it_runs():
    # `make run` runs `seed --demo` at every start: the same four accounts, the same 100 USDC each
    run("seed", "--demo")
    output = run("seed", "--demo")
    assert "Created 0 bettor(s)." in output
    assert not User.objects.filter(email__startswith="bettor").exists()
    assert User.objects.count() == 4
    assert tvl_get().cash_u == 300_000_000


def test_deposit_credits_and_amount_zero_prints_the_balance():
    alice = UserFactory(email="user@example.com")
    output = run("deposit", "--user", "user@example.com", "--amount", "1000000")
    assert "Credited 1.00 USDC (1,000,000 u) to user@example.com" in output
    assert account_balance_u(code=Account.user_cash_code(alice.pk)) == 1_000_000
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -1_000_000
    entries_before = LedgerEntry.objects.count()
    output = run("deposit", "--user", "user@example.com", "--amount", "0")
    assert "Balance of user@example.com: 1.00 USDC (1,000,000 u)" in output
    assert LedgerEntry.objects.count() == entries_before
    assert AuditEvent.objects.filter(action="deposit.credit", source="cli").count() == 1
    assert_ledger_invariants()


def test_withdraw_moves_cash_to_pending():
    alice = UserFactory(email="user@example.com")
    fund(alice, 1_000_000)
    output = run("withdraw", "--user", "user@example.com", "--amount", "500000")
    # the operator at the shell acts for the user: no registered address, so it waits for an approval
    assert "QUEUED (needs staff approval): 0.50 USDC (500,000 u)" in output
    assert account_balance_u(code=Account.user_cash_code(alice.pk)) == 500_000
    assert tvl_get().pending_withdrawals_u == 500_000
    assert Withdrawal.objects.get().status == Withdrawal.Status.QUEUED
    assert_ledger_invariants()


@pytest.mark.parametrize(
    "args, message",
    [
        (["deposit", "--user", "nobody@example.com", "--amount", "5"], "No user with email"),
        (["deposit", "--user", "user@example.com", "--amount", "-5"], r"must be positive .*'-5'\. \[invalid_amount\]$"),
        (["deposit", "--user", "user@example.com", "--amount", "1.5"], r"whole number.*\[invalid_amount\]$"),
        (["deposit", "--user", "user@example.com", "--amount", "abc"], r"whole number.*\[invalid_amount\]$"),
        (["deposit", "--user", "user@example.com", "--amount", "10000000000001"], "must not exceed"),
        (["withdraw", "--user", "user@example.com", "--amount", "0"], r"greater than zero\. \[invalid_amount\]$"),
        (["withdraw", "--user", "user@example.com", "--amount", "700001"], "Insufficient funds"),
        (["seed", "--users", "-1"], "between 0 and 100000"),
        (["audit_log", "--since", "yesterday"], r"--since must look like .*\[invalid_since\]$"),
    ],
)
def test_refusals_are_clear_sentences_and_write_nothing(args, message):
    alice = UserFactory(email="user@example.com")
    fund(alice, 700_000)
    entries_before = LedgerEntry.objects.count()
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert LedgerEntry.objects.count() == entries_before
    assert account_balance_u(code=Account.user_cash_code(alice.pk)) == 700_000
    assert Withdrawal.objects.count() == 0


def test_tvl_prints_the_manuals_three_lines():
    alice = UserFactory()
    fund(alice, 3_250_000)
    run_output = run("tvl")
    assert run_output.splitlines() == [
        "📊 TVL Metrics:",
        "  Locked:             0.00 USDC (0 u)",
        "  Total Cash:         3.25 USDC (3,250,000 u)",
        "  Pending Withdrawals: 0.00 USDC (0 u)",
    ]


def test_ledger_audit_passes_on_a_sound_ledger():
    fund(UserFactory(), 1_000)
    output = run("ledger_audit")
    assert "Checked 2 entries in 1 batches" in output
    assert "Ledger audit passed." in output


def test_ledger_audit_names_the_broken_account_and_fails():
    alice = UserFactory()
    fund(alice, 1_000)
    code = Account.user_cash_code(alice.pk)
    Account.objects.filter(code=code).update(balance_u=1_001)  # a corrupted cache
    out = StringIO()
    with pytest.raises(CommandError, match="Ledger audit FAILED"):
        call_command("ledger_audit", stdout=out)
    assert f"account {code}: cached 1001 u, entries 1000 u" in out.getvalue()


def test_a_refused_command_exits_non_zero_without_a_traceback(tmp_path: Path):
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, capture_output=True)
    result = subprocess.run(
        [*manage, "deposit", "--user", "nobody@example.com", "--amount", "5"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: No user with email 'nobody@example.com'. [unknown_user]"
