"""seed: one password hash for every bettor, unusable passwords, funding through the deposit service, a bar."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from betting.management.commands import seed
from betting.models import User
from betting.services import user_create
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, user_balance_u
from tests.conftest import assert_ledger_invariants
from withdrawals.models import Deposit

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def test_a_shared_password_is_hashed_once_and_every_bettor_can_log_in(monkeypatch):
    hashes = []
    real = seed.make_password
    monkeypatch.setattr(seed, "make_password", lambda raw: hashes.append(raw) or real(raw))
    monkeypatch.setattr(seed, "BATCH", 2)  # three users: two batches
    call_command("seed", "--users", "3", "--fund", "2000000", "--password", "pass-word-1", stdout=StringIO())
    assert hashes == ["pass-word-1"]
    bettors = list(User.objects.filter(email__startswith="bettor").order_by("email"))
    assert [u.email for u in bettors] == ["bettor1@example.com", "bettor2@example.com", "bettor3@example.com"]
    assert all(u.check_password("pass-word-1") for u in bettors)
    assert [user_balance_u(user_id=u.pk) for u in bettors] == [2_000_000] * 3
    assert Deposit.objects.filter(tx_id__startswith="seed:").count() == 3
    assert_ledger_invariants()


def test_unusable_passwords_cannot_log_in_and_the_seed_shows_its_progress(capsys):
    call_command("seed", "--users", "2", "--unusable-password")
    captured = capsys.readouterr()
    assert "seed: bettors: 2/2 (100%)" in captured.err  # periodic lines with counts off a terminal
    assert "password -" in captured.out
    assert not any(u.has_usable_password() for u in User.objects.filter(email__startswith="bettor"))


def test_password_and_unusable_password_together_are_refused():
    with pytest.raises(CommandError, match="not both"):
        call_command("seed", "--users", "1", "--password", "x", "--unusable-password")
    assert User.objects.count() == 0


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _money_rows() -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        Deposit.objects.count(),
        LedgerBatch.objects.count(),
        LedgerEntry.objects.count(),
        AuditEvent.objects.filter(action="deposit.credit").count(),
    )


def test_funded_bettors_in_batches_exact_rows_and_balances(monkeypatch):
    monkeypatch.setattr(seed, "BATCH", 3)  # seven users: batches of 3, 3, 1
    output = _seed("--users", "7", "--fund", "1234567", "--password", "pass-word-1")
    bettors = list(User.objects.filter(email__startswith="bettor"))
    assert sorted(u.email for u in bettors) == sorted(f"bettor{n}@example.com" for n in range(1, 8))
    assert [user_balance_u(user_id=u.pk) for u in bettors] == [1_234_567] * 7
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -8_641_969
    # the rows user_create would have made: a plain active bettor who can log in with the shared password
    assert {(u.is_superuser, u.is_staff, u.is_active, u.last_login) for u in bettors} == {(False, False, True, None)}
    assert all(u.check_password("pass-word-1") and u.date_joined is not None for u in bettors)
    assert not any(u.groups.exists() or u.user_permissions.exists() for u in bettors)
    assert Account.objects.filter(kind="user_cash").count() == 7
    assert _money_rows() == (7, 7, 7, 14, 7)
    # each bettor: one deposit seed:<pk>, its batch deposit:seed:<pk>, the audit row of a shell deposit
    for user in bettors:
        deposit = Deposit.objects.get(user=user)
        assert (deposit.tx_id, deposit.amount_u, deposit.source) == (f"seed:{user.pk}", 1_234_567, "cli")
        batch = LedgerBatch.objects.get(idempotency_key=f"deposit:seed:{user.pk}")
        assert (batch.ref_type, batch.ref_id) == ("deposit", str(deposit.pk))
        assert sorted(batch.entries.values_list("account_id", "amount_u")) == [
            (Account.EXTERNAL_DEPOSITS, -1_234_567),
            (Account.user_cash_code(user.pk), 1_234_567),
        ]
        assert AuditEvent.objects.get(action="deposit.credit", object_id=str(deposit.pk)).reason == "seed"
        assert f"{user.pk} {user.email} password pass-word-1 balance 1.234567 USDC" in output
    assert output.count(" password pass-word-1 balance ") == 7
    assert "Created 7 bettor(s)." in output
    assert_ledger_invariants()


def test_a_rerun_adds_new_bettors_and_funds_no_one_twice():
    _seed("--users", "3", "--fund", "1000000", "--unusable-password")
    first = set(User.objects.values_list("pk", flat=True))
    _seed("--users", "3", "--fund", "1000000", "--unusable-password")
    emails = sorted(User.objects.values_list("email", flat=True), key=lambda e: int(e[6:].split("@")[0]))
    assert emails == [f"bettor{n}@example.com" for n in range(1, 7)]
    assert [user_balance_u(user_id=pk) for pk in first] == [1_000_000] * 3  # the first three: funded once
    assert _money_rows() == (6, 6, 6, 12, 6)
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -6_000_000
    assert_ledger_invariants()


def test_an_email_taken_in_another_case_is_skipped_as_user_create_skips_it():
    other = User.objects.create(email="Bettor1@Example.com", password="!")  # not lowercased (no service)
    output = _seed("--users", "2", "--unusable-password")
    assert "bettor1@example.com" not in output
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "Bettor1@Example.com", "bettor2@example.com", "bettor3@example.com",
    ]  # fmt: skip
    assert not Account.objects.filter(owner=other).exists()
    assert "Created 2 bettor(s)." in output


def test_a_taken_email_is_skipped_and_the_count_still_made():
    taken = user_create(email="bettor2@example.com", password="own-pass-1")  # index starts at 2: the 1st bettor
    output = _seed("--users", "3", "--fund", "5", "--password", "pass-word-1")
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "bettor2@example.com", "bettor3@example.com", "bettor4@example.com", "bettor5@example.com",
    ]  # fmt: skip
    assert "Created 3 bettor(s)." in output
    assert "bettor2@example.com" not in output
    assert user_balance_u(user_id=taken.pk) == 0  # not ours: neither its password printed nor funded
    assert User.objects.get(pk=taken.pk).check_password("own-pass-1")
    assert _money_rows() == (4, 3, 3, 6, 3)
    assert_ledger_invariants()


def test_statements_per_batch_do_not_grow_with_the_batch(monkeypatch):
    def statements(users: int) -> int:
        monkeypatch.setattr(seed, "BATCH", users)  # one batch
        with CaptureQueriesContext(connection) as queries:
            _seed("--users", str(users), "--fund", "10", "--password", "pass-word-1")
        return len(queries)

    assert statements(2) == statements(40)
    assert _money_rows() == (42, 42, 42, 84, 42)
    assert_ledger_invariants()


def test_unfunded_bettors_have_empty_cash_accounts_and_no_deposits():
    _seed("--users", "2", "--password", "pass-word-1")
    assert Account.objects.filter(kind="user_cash", balance_u=0).count() == 2
    assert _money_rows() == (2, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--users", "100001"], "between 0 and 100000"),
        (["--users", "-1"], "between 0 and 100000"),
        (["--users", "1", "--fund", "-5"], "fund"),
    ],
)
def test_bad_input_is_a_sentence_and_writes_nothing(args, sentence):
    with pytest.raises(CommandError, match=sentence):
        _seed(*args)
    assert _money_rows() == (0, 0, 0, 0, 0)
