"""deposits_credit_many: many deposits at once, each the deposit, batch, entries and audit row deposit_credit makes."""

import pytest

from audit.models import AuditEvent
from betting.models import User
from ledger.exceptions import InvalidAmount
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory
from withdrawals.exceptions import DepositConflict, InvalidWebhook
from withdrawals.models import Deposit
from withdrawals.services import DepositCredit, deposit_credit, deposits_credit_many

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _written() -> tuple[int, int, int, int]:
    return (
        Deposit.objects.count(),
        LedgerBatch.objects.count(),
        LedgerEntry.objects.count(),
        AuditEvent.objects.filter(action="deposit.credit").count(),
    )


def _shape(deposit: Deposit) -> tuple:
    """A deposit as the ledger and the audit log hold it, with the user's id and the deposit's pk named."""
    batch = LedgerBatch.objects.get(idempotency_key=f"deposit:{deposit.tx_id}")
    cash = Account.user_cash_code(deposit.user_id)
    lines = sorted(
        ("cash" if account == cash else account, amount_u, ref_type, ref_id == str(deposit.pk))
        for account, amount_u, ref_type, ref_id in batch.entries.values_list(
            "account_id", "amount_u", "ref_type", "ref_id"
        )
    )
    audit = list(
        AuditEvent.objects.filter(action="deposit.credit", object_id=str(deposit.pk)).values_list(
            "source", "actor_label", "object_type", "reason", "before", "after"
        )
    )
    mine = {"user": str(deposit.user_id), "tx_id": deposit.tx_id}
    after = [
        (
            source,
            label,
            kind,
            reason,
            before,
            {key: value == mine[key] if key in mine else value for key, value in row.items()},
        )
        for source, label, kind, reason, before, row in audit
    ]
    return (
        deposit.amount_u, deposit.status, deposit.source, deposit.from_address, deposit.raw_payload, deposit.intent_id,
        batch.ref_type, batch.ref_id == str(deposit.pk), batch.memo, batch.created_by_id, lines, after,
    )  # fmt: skip


def test_many_deposits_are_what_single_deposits_are():
    # given: one bettor funded the single way, three the bulk way, same amount, tx ids alike
    single, *bulk = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    deposit_credit(user=single, amount_u=7_000_001, tx_id="tx-0", source="cli", reason="seed")
    # when
    answers = deposits_credit_many(
        credits=[DepositCredit(user_id=u.pk, amount_u=7_000_001, tx_id=f"tx-{i}") for i, u in enumerate(bulk, 1)],
        source="cli",
        reason="seed",
    )
    # then
    assert [created for _, created in answers] == [True, True, True]
    assert [d.tx_id for d, _ in answers] == ["tx-1", "tx-2", "tx-3"]
    assert [d.pk for d, _ in answers] == list(
        Deposit.objects.filter(tx_id__in=["tx-1", "tx-2", "tx-3"]).order_by("tx_id").values_list("pk", flat=True)
    )
    reference = _shape(Deposit.objects.get(tx_id="tx-0"))
    assert reference[-2] == [
        ("cash", 7_000_001, "deposit", True),
        (Account.EXTERNAL_DEPOSITS, -7_000_001, "deposit", True),
    ]
    assert len(reference[-1]) == 1  # one audit row
    assert [_shape(Deposit.objects.get(tx_id=f"tx-{i}")) for i in (1, 2, 3)] == [reference] * 3
    assert [user_balance_u(user_id=u.pk) for u in (single, *bulk)] == [7_000_001] * 4
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -28_000_004
    assert _written() == (4, 4, 8, 4)
    assert_ledger_invariants()


def test_a_retried_call_funds_once_and_either_door_replays_the_other():
    alice, bob = UserFactory(), UserFactory()
    deposit_credit(user=alice, amount_u=100, tx_id="a", source="system")
    credits = [DepositCredit(user_id=alice.pk, amount_u=100, tx_id="a"), DepositCredit(bob.pk, 200, "b")]
    # when: a's tx id is already recorded (by deposit_credit), b's is new
    first = deposits_credit_many(credits=credits, source="system")
    assert [created for _, created in first] == [False, True]
    before = _written()
    # a retry of the whole call, and deposit_credit of b: nothing more (the same ledger request under each key)
    again = deposits_credit_many(credits=credits, source="system")
    deposit, created = deposit_credit(user=bob, amount_u=200, tx_id="b", source="system")
    assert [created for _, created in again] == [False, False]
    assert [d.pk for d, _ in again] == [d.pk for d, _ in first]
    assert (deposit.pk, created) == (first[1][0].pk, False)
    assert _written() == before == (2, 2, 4, 0)  # source "system": no audit row, as deposit_credit
    assert [user_balance_u(user_id=u.pk) for u in (alice, bob)] == [100, 200]
    assert_ledger_invariants()


def test_a_tx_id_recorded_with_another_user_or_amount_refuses_the_whole_call():
    alice, bob = UserFactory(), UserFactory()
    deposit_credit(user=alice, amount_u=100, tx_id="a", source="cli")
    before = _written()
    for wrong in (DepositCredit(alice.pk, 101, "a"), DepositCredit(bob.pk, 100, "a")):
        with pytest.raises(DepositConflict, match="another user or amount"):
            deposits_credit_many(credits=[DepositCredit(bob.pk, 5, "new"), wrong], source="cli")
    assert _written() == before
    assert user_balance_u(user_id=bob.pk) == 0
    assert not Deposit.objects.filter(tx_id="new").exists()


@pytest.mark.parametrize(
    ("credit", "error", "match"),
    [
        (DepositCredit(None, 0, "t"), InvalidAmount, "greater than zero"),
        (DepositCredit(None, 1.5, "t"), InvalidAmount, "whole number"),
        (DepositCredit(None, 5, ""), InvalidWebhook, "tx_id"),
        (DepositCredit(None, 5, "x" * 129), InvalidWebhook, "tx_id"),
    ],
)
def test_bad_credits_write_nothing(credit, error, match):
    alice = UserFactory()
    bad = DepositCredit(alice.pk, credit.amount_u, credit.tx_id)
    with pytest.raises(error, match=match):
        deposits_credit_many(credits=[DepositCredit(alice.pk, 5, "fine"), bad], source="cli")
    assert _written() == (0, 0, 0, 0)


def test_one_tx_id_twice_in_a_call_is_refused():
    alice = UserFactory()
    with pytest.raises(DepositConflict) as refused:
        deposits_credit_many(credits=[DepositCredit(alice.pk, 5, "t"), DepositCredit(alice.pk, 5, "t")], source="cli")
    assert refused.value.code == "duplicate_tx_id"
    assert _written() == (0, 0, 0, 0)
    assert deposits_credit_many(credits=[], source="cli") == []


def test_a_user_without_a_cash_account_gets_one_as_deposit_credit_gives_it():
    plain = User.objects.create_user(email="plain@example.com", password="pw-123456")  # no service: no account
    assert not Account.objects.filter(owner=plain).exists()
    deposits_credit_many(credits=[DepositCredit(plain.pk, 9, "p")], source="system")
    assert list(Account.objects.filter(owner=plain).values_list("code", "kind", "balance_u")) == [
        (Account.user_cash_code(plain.pk), "user_cash", 9)
    ]
    assert_ledger_invariants()
