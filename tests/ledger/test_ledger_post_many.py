"""ledger_post_many: many balanced batches in a few statements, each the batch ledger_post would have made."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import sql
from ledger.exceptions import IdempotencyConflict, InsufficientFunds, UnbalancedBatch, UnknownAccount
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u
from ledger.services import Line, Posting, ledger_post, ledger_post_many
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _cash(user) -> str:
    return Account.user_cash_code(user.pk)


def _deposit(user, amount_u: int, key: str) -> Posting:
    return Posting(
        lines=[Line(_cash(user), amount_u), Line(Account.EXTERNAL_DEPOSITS, -amount_u)],
        ref_type="deposit",
        ref_id=key,
        idempotency_key=key,
    )


def _written() -> tuple[int, int, int]:
    return LedgerBatch.objects.count(), LedgerEntry.objects.count(), sum(a.balance_u for a in Account.objects.all())


def _shape(key: str) -> tuple:
    """What a batch is, without its ids and times: key, reference, digest, memo and its (account, amount) lines."""
    batch = LedgerBatch.objects.get(idempotency_key=key)
    lines = sorted(LedgerEntry.objects.filter(batch=batch).values_list("account_id", "amount_u", "ref_type", "ref_id"))
    return batch.ref_type, batch.ref_id, batch.lines_digest, batch.memo, lines


def test_many_postings_make_the_batches_and_balances_single_posts_make():
    # given
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    postings = [_deposit(alice, 1_000_001, "m1"), _deposit(bob, 2_000_002, "m2"), _deposit(carol, 3, "m3")]
    # when
    posted = ledger_post_many(postings)
    # then
    assert [p.created for p in posted] == [True, True, True]
    assert [p.batch.idempotency_key for p in posted] == ["m1", "m2", "m3"]
    assert [account_balance_u(code=_cash(u)) for u in (alice, bob, carol)] == [1_000_001, 2_000_002, 3]
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -3_000_006
    assert LedgerBatch.objects.count() == 3
    assert LedgerEntry.objects.count() == 6
    # the returned batches are the stored ones
    assert [p.batch.pk for p in posted] == list(
        LedgerBatch.objects.filter(idempotency_key__in=["m1", "m2", "m3"])
        .order_by("idempotency_key")
        .values_list("pk", flat=True)
    )
    # same shape as ledger_post: post the same movement for another user under another key, compare
    dave = UserFactory()
    ledger_post(
        [Line(_cash(dave), 3), Line(Account.EXTERNAL_DEPOSITS, -3)],
        ref_type="deposit",
        ref_id="m3",
        idempotency_key="s3",
    )
    many_shape, single_shape = _shape("m3"), _shape("s3")
    assert many_shape[:2] == single_shape[:2] == ("deposit", "m3")
    assert many_shape[3] == single_shape[3] == ""
    assert (
        [line[1:] for line in many_shape[4]]
        == [line[1:] for line in single_shape[4]]
        == [
            (-3, "deposit", "m3"),
            (3, "deposit", "m3"),
        ]
    )
    assert_ledger_invariants()


def test_a_key_posted_by_either_door_is_a_replay_through_the_other():
    alice, bob = UserFactory(), UserFactory()
    ledger_post(
        [Line(_cash(alice), 500), Line(Account.EXTERNAL_DEPOSITS, -500)], ref_type="deposit", ref_id="k1",
        idempotency_key="k1",
    )  # fmt: skip
    # when: the same request under k1 again, with a new one
    posted = ledger_post_many([_deposit(alice, 500, "k1"), _deposit(bob, 700, "k2")])
    # then: k1 answers its batch, k2 is new
    assert [p.created for p in posted] == [False, True]
    assert posted[0].batch.pk == LedgerBatch.objects.get(idempotency_key="k1").pk
    assert [account_balance_u(code=_cash(u)) for u in (alice, bob)] == [500, 700]
    # and the other way round: ledger_post replays a key ledger_post_many made (same digest)
    again = ledger_post(
        [Line(_cash(bob), 700), Line(Account.EXTERNAL_DEPOSITS, -700)], ref_type="deposit", ref_id="k2",
        idempotency_key="k2",
    )  # fmt: skip
    assert again.created is False
    assert again.batch.pk == posted[1].batch.pk
    # and the whole call again writes nothing
    before = _written()
    assert [p.created for p in ledger_post_many([_deposit(alice, 500, "k1"), _deposit(bob, 700, "k2")])] == [
        False,
        False,
    ]
    assert _written() == before
    assert (LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (2, 4)
    assert_ledger_invariants()


def test_a_key_reused_for_another_movement_refuses_the_whole_call():
    alice, bob = UserFactory(), UserFactory()
    ledger_post_many([_deposit(alice, 500, "k1")])
    before = _written()
    with pytest.raises(IdempotencyConflict):
        ledger_post_many([_deposit(bob, 900, "k2"), _deposit(alice, 501, "k1")])
    assert _written() == before
    assert account_balance_u(code=_cash(bob)) == 0
    assert not LedgerBatch.objects.filter(idempotency_key="k2").exists()


def test_one_key_twice_in_a_call_posts_once_and_another_request_under_it_is_refused():
    alice = UserFactory()
    posted = ledger_post_many([_deposit(alice, 40, "twice"), _deposit(alice, 40, "twice")])
    assert [p.created for p in posted] == [True, False]
    assert posted[0].batch.pk == posted[1].batch.pk
    assert account_balance_u(code=_cash(alice)) == 40
    assert (LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (1, 2)
    with pytest.raises(IdempotencyConflict):
        ledger_post_many([_deposit(alice, 1, "other"), _deposit(alice, 2, "other")])
    assert account_balance_u(code=_cash(alice)) == 40


def test_the_overdraft_rule_applies_posting_by_posting_in_order():
    alice, bob = UserFactory(), UserFactory()
    ledger_post_many([_deposit(alice, 5, "seed-alice")])
    pay = [Line(_cash(alice), -4), Line(_cash(bob), 4)]
    before = _written()
    # 5 - 4 - 4 < 0 at the second posting: nothing of the call is written
    with pytest.raises(InsufficientFunds) as refused:
        ledger_post_many(
            [Posting(pay, ref_type="transfer", ref_id="p1", idempotency_key="p1"),
             Posting(pay, ref_type="transfer", ref_id="p2", idempotency_key="p2")]
        )  # fmt: skip
    assert refused.value.extra == {"account": _cash(alice), "balance_u": 1}  # what the second posting met
    assert _written() == before
    # a credit first, then the debit it makes possible: 5 + 3 - 7 = 1
    posted = ledger_post_many(
        [_deposit(alice, 3, "top-up"),
         Posting([Line(_cash(alice), -7), Line(_cash(bob), 7)], ref_type="transfer", ref_id="p3", idempotency_key="p3")]
    )  # fmt: skip
    assert [p.created for p in posted] == [True, True]
    assert [account_balance_u(code=_cash(u)) for u in (alice, bob)] == [1, 7]
    assert_ledger_invariants()


def test_unbalanced_and_unknown_accounts_write_nothing():
    alice = UserFactory()
    before = _written()
    with pytest.raises(UnbalancedBatch):
        ledger_post_many(
            [_deposit(alice, 5, "ok"),
             Posting([Line(_cash(alice), 5), Line(Account.EXTERNAL_DEPOSITS, -4)], ref_type="deposit", ref_id="x",
                     idempotency_key="bad")]
        )  # fmt: skip
    with pytest.raises(UnknownAccount):
        ledger_post_many(
            [_deposit(alice, 5, "ok"),
             Posting([Line("user:nobody:cash", 5), Line(Account.EXTERNAL_DEPOSITS, -5)], ref_type="deposit",
                     ref_id="y", idempotency_key="nobody")]
        )  # fmt: skip
    assert _written() == before
    assert ledger_post_many([]) == []


def test_statements_do_not_grow_with_the_postings_and_the_parameter_limit_splits_them(monkeypatch):
    users = [UserFactory() for _ in range(12)]

    def statements(postings: list[Posting]) -> int:
        with CaptureQueriesContext(connection) as queries:
            ledger_post_many(postings)
        return len(queries)

    few = statements([_deposit(u, 10, f"few-{i}") for i, u in enumerate(users[:2])])
    many = statements([_deposit(u, 10, f"many-{i}") for i, u in enumerate(users)])
    assert few == many
    # a database without arrays taking two rows a statement: the same postings land, in more statements
    monkeypatch.setattr(sql, "_arrays", lambda: False)
    monkeypatch.setattr(sql, "rows_per_statement", lambda columns: 2)
    split = statements([_deposit(u, 5, f"split-{i}") for i, u in enumerate(users[:5])])
    assert split > many
    assert [account_balance_u(code=_cash(u)) for u in users] == [25, 25, 15, 15, 15] + [10] * 7
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -165
    assert (LedgerBatch.objects.count(), LedgerEntry.objects.count()) == (19, 38)
    assert_ledger_invariants()
