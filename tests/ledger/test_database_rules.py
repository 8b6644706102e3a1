"""The ledger's rules hold in the database itself, not only in ledger_post."""

import threading

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from ledger.exceptions import InsufficientFunds
from ledger.models import Account, LedgerEntry
from ledger.selectors import account_balance_u
from ledger.services import Line, Posting, ledger_post, ledger_post_many
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = pytest.mark.money


@pytest.mark.django_db
def test_update_of_an_entry_is_refused_by_the_database():
    alice = UserFactory()
    fund(alice, 1_000)
    entry = LedgerEntry.objects.filter(account_id=Account.user_cash_code(alice.pk)).get()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_u=999_999)
    assert LedgerEntry.objects.get(pk=entry.pk).amount_u == 1_000


@pytest.mark.django_db
def test_user_cash_below_zero_is_refused_by_a_check_constraint():
    alice = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(code=Account.user_cash_code(alice.pk)).update(balance_u=-1)
    assert account_balance_u(code=Account.user_cash_code(alice.pk)) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_raw_unbalanced_insert_fails_at_commit():
    alice = UserFactory()
    fund(alice, 5_000)
    batch_id = LedgerEntry.objects.get(account_id=Account.user_cash_code(alice.pk)).batch_id
    # accepted by the statement ... refused by the deferred trigger at COMMIT (leaving atomic, inside raises)
    with (
        pytest.raises(IntegrityError, match="does not sum to zero"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
            "VALUES (%s, 7, 'forged', 'x', %s, now())",
            [Account.HOUSE, batch_id],
        )
    assert LedgerEntry.objects.filter(ref_type="forged").count() == 0
    assert_ledger_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_batch_among_many_in_one_transaction_fails_at_commit():
    """The trigger remembers only the batch it summed last: a batch whose entries come back after another's
    is summed again, so a forged line in the first of many batches is still refused."""
    alice, bob = UserFactory(), UserFactory()
    postings = [
        Posting([Line(Account.user_cash_code(u.pk), 10), Line(Account.EXTERNAL_DEPOSITS, -10)], ref_type="t",
                ref_id=str(i), idempotency_key=f"many-{i}")
        for i, u in enumerate((alice, bob))
    ]  # fmt: skip
    with pytest.raises(IntegrityError, match="does not sum to zero"), transaction.atomic():
        first, _ = ledger_post_many(postings)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_entries (account, amount_u, ref_type, ref_id, batch, ts) "
                "VALUES (%s, 7, 'forged', 'x', %s, now())",
                [Account.HOUSE, first.batch.pk],
            )
    assert LedgerEntry.objects.count() == 0
    # and the same batches, balanced, commit: each summed once
    ledger_post_many(postings)
    assert [account_balance_u(code=Account.user_cash_code(u.pk)) for u in (alice, bob)] == [10, 10]
    assert_ledger_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_delete_of_an_entry_is_refused_by_the_database():
    alice = UserFactory()
    fund(alice, 5_000)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        LedgerEntry.objects.filter(account_id=Account.user_cash_code(alice.pk))._raw_delete(connection.alias)
    assert LedgerEntry.objects.count() == 2
    assert_ledger_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_threads_posting_against_one_account_never_overdraw_it():
    # given: 10 000 000 u, and 50 concurrent transfers of 300 000 u (15 000 000 u asked)
    alice, bob = UserFactory(), UserFactory()
    fund(alice, 10_000_000)
    source, target = Account.user_cash_code(alice.pk), Account.user_cash_code(bob.pk)
    outcomes: list[str] = []
    start = threading.Barrier(50)

    def transfer(index: int) -> None:
        try:
            start.wait()
            ledger_post(
                [Line(source, -300_000), Line(target, 300_000)],
                ref_type="transfer",
                ref_id=index,
                idempotency_key=f"transfer-{index}",
            )
            outcomes.append("ok")
        except InsufficientFunds:
            outcomes.append("insufficient_funds")
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=transfer, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: exactly floor(10 000 000 / 300 000) = 33 went through
    assert outcomes.count("ok") == 33
    assert outcomes.count("insufficient_funds") == 17
    assert account_balance_u(code=source) == 100_000
    assert account_balance_u(code=target) == 9_900_000
    assert_ledger_invariants()
