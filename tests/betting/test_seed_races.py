"""seed and the bulk deposit on PostgreSQL with real threads: two seeds at once make distinct bettors, each
funded once; one bulk deposit delivered twice at once credits once."""

from io import StringIO

import pytest
from django.core.management import call_command

from betting.management.commands import seed
from betting.models import User
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory
from tests.proof.conftest import run_threads
from withdrawals.models import Deposit
from withdrawals.services import DepositCredit, deposits_credit_many

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_seeds_at_once_make_distinct_bettors_each_funded_once(monkeypatch):
    monkeypatch.setattr(seed, "BATCH", 4)  # many small batches, so the two seeds' emails collide often

    def one_seed(index: int) -> str:
        out = StringIO()
        call_command("seed", "--users", "10", "--fund", "3000000", "--unusable-password", stdout=out, stderr=StringIO())
        return out.getvalue()

    outputs = run_threads(2, one_seed)
    assert [isinstance(output, str) and "Created 10 bettor(s)." in output for output in outputs] == [True, True]
    bettors = list(User.objects.filter(email__startswith="bettor"))
    assert len(bettors) == 20
    printed = [line.split()[1] for output in outputs for line in output.splitlines() if " password " in line]
    assert sorted(printed) == sorted(u.email for u in bettors)  # each bettor printed by the seed that made it
    assert [user_balance_u(user_id=u.pk) for u in bettors] == [3_000_000] * 20
    assert (Deposit.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (20, 20, 40)
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -60_000_000
    assert_ledger_invariants()


def test_one_bulk_deposit_twice_at_once_credits_once():
    users = [UserFactory() for _ in range(6)]
    credits = [DepositCredit(user_id=u.pk, amount_u=1_000 + i, tx_id=f"twin-{i}") for i, u in enumerate(users)]
    answers = run_threads(2, lambda index: deposits_credit_many(credits=credits, source="system"))
    assert [isinstance(answer, list) for answer in answers] == [True, True], answers
    created = sorted(sum(made for _, made in answer) for answer in answers)
    assert created == [0, 6]  # one call made all six, its twin waited and answered them
    assert [d.pk for d, _ in answers[0]] == [d.pk for d, _ in answers[1]]
    assert [user_balance_u(user_id=u.pk) for u in users] == [1_000, 1_001, 1_002, 1_003, 1_004, 1_005]
    assert (Deposit.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (6, 6, 12)
    assert_ledger_invariants()
