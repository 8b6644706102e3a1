"""ledger_audit finds every broken invariant (on PostgreSQL from one scan, with fingerprints for batches and refs)."""

import pytest
from django.db import connection, transaction

from ledger.models import Account, LedgerEntry
from ledger.selectors import ledger_audit
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _two_deposits():
    alice, bob = UserFactory(), UserFactory()
    fund(alice, 5_000_000, tx_id="t1")
    fund(bob, 7_000_000, tx_id="t2")
    return alice, bob


def test_a_sound_ledger_passes_with_exact_counts():
    _two_deposits()
    report = ledger_audit()
    assert report.ok
    assert (report.entries_checked, report.batches_checked, report.global_sum_u) == (4, 2, 0)
    assert report.accounts_checked == Account.objects.count()
    assert (report.unbalanced_batches, report.unbalanced_refs, report.balance_mismatches) == ([], [], [])


def test_an_unbalanced_batch_its_ref_and_the_drifted_balance_are_each_named():
    alice, _bob = _two_deposits()
    entry = LedgerEntry.objects.filter(account_id=Account.user_cash_code(alice.pk)).get()
    # One stray line in alice's deposit batch, rolled back before the commit trigger would refuse it.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
                "SELECT account, 3, ref_type, ref_id, batch, ts FROM ledger_entries WHERE id = %s",
                [entry.pk],
            )
        Account.objects.filter(code="house").update(balance_u=11)
        report = ledger_audit()
        transaction.set_rollback(True)
    assert not report.ok
    assert report.entries_checked == 5
    assert report.global_sum_u == 3
    assert report.unbalanced_batches == [(entry.batch_id, 3)]
    assert report.unbalanced_refs == [(entry.ref_id, 3)]
    assert report.balance_mismatches == [("house", 11, 0), (Account.user_cash_code(alice.pk), 5_000_000, 5_000_003)]
