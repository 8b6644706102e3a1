"""seed: one password hash for every bettor, unusable passwords, funding through the deposit service, a bar."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from betting.management.commands import seed
from betting.models import User
from ledger.selectors import user_balance_u
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
