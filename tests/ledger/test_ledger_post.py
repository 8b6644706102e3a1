import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from ledger.exceptions import IdempotencyConflict, InsufficientFunds, InvalidAmount, UnbalancedBatch, UnknownAccount
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get
from ledger.services import Line, account_ensure_round_pool, account_ensure_user_cash, ledger_post, ledger_post_from_sql
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def _cash(user) -> str:
    return Account.user_cash_code(user.pk)


def _deposit(user, amount_u: int, key: str) -> None:
    ledger_post(
        [Line(_cash(user), amount_u), Line(Account.EXTERNAL_DEPOSITS, -amount_u)],
        ref_type="deposit",
        ref_id=key,
        idempotency_key=key,
    )


def _counts() -> tuple[int, int]:
    return LedgerBatch.objects.count(), LedgerEntry.objects.count()


def test_balanced_post_moves_exact_amounts():
    # given
    alice, bob = UserFactory(), UserFactory()
    _deposit(alice, 7_000_000, "d1")
    # when
    posted = ledger_post(
        [Line(_cash(alice), -2_500_001), Line(_cash(bob), 2_500_001)],
        ref_type="transfer",
        ref_id="t1",
        idempotency_key="t1",
    )
    # then
    assert posted.created is True
    assert account_balance_u(code=_cash(alice)) == 4_499_999
    assert account_balance_u(code=_cash(bob)) == 2_500_001
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -7_000_000
    assert list(posted.batch.entries.order_by("amount_u").values_list("account", "amount_u")) == [
        (_cash(alice), -2_500_001),
        (_cash(bob), 2_500_001),
    ]
    assert tvl_get().cash_u == 7_000_000
    assert_ledger_invariants()


def test_unbalanced_batch_is_refused_and_writes_nothing():
    alice = UserFactory()
    before = _counts()
    with pytest.raises(UnbalancedBatch) as error:
        ledger_post(
            [Line(_cash(alice), 10), Line(Account.EXTERNAL_DEPOSITS, -9)], ref_type="x", ref_id="1", idempotency_key="k"
        )
    assert error.value.code == "unbalanced_batch"
    with pytest.raises(UnbalancedBatch):
        ledger_post([Line(_cash(alice), 5)], ref_type="x", ref_id="1", idempotency_key="k0")
    assert _counts() == before
    assert account_balance_u(code=_cash(alice)) == 0


def test_overdraft_is_refused_and_writes_nothing():
    alice, bob = UserFactory(), UserFactory()
    _deposit(alice, 1_000_000, "d1")
    before = _counts()
    with pytest.raises(InsufficientFunds) as error:
        ledger_post(
            [Line(_cash(alice), -1_000_001), Line(_cash(bob), 1_000_001)], ref_type="t", ref_id="1", idempotency_key="t"
        )
    assert error.value.code == "insufficient_funds"
    assert _counts() == before
    assert account_balance_u(code=_cash(alice)) == 1_000_000
    assert account_balance_u(code=_cash(bob)) == 0


def test_house_cannot_go_negative_through_an_ordinary_post():
    alice = UserFactory()
    with pytest.raises(InsufficientFunds):
        ledger_post([Line(Account.HOUSE, -5), Line(_cash(alice), 5)], ref_type="t", ref_id="1", idempotency_key="h")
    posted = ledger_post(
        [Line(Account.HOUSE, -5), Line(_cash(alice), 5)],
        ref_type="t",
        ref_id="1",
        idempotency_key="h2",
        allow_negative=frozenset({Account.HOUSE}),
    )
    assert posted.created
    assert account_balance_u(code=Account.HOUSE) == -5


def test_same_key_twice_posts_once():
    alice = UserFactory()
    first = ledger_post(
        [Line(_cash(alice), 300), Line(Account.EXTERNAL_DEPOSITS, -300)],
        ref_type="d",
        ref_id="9",
        idempotency_key="same",
    )
    second = ledger_post(
        [Line(Account.EXTERNAL_DEPOSITS, -300), Line(_cash(alice), 300)],
        ref_type="d",
        ref_id="9",
        idempotency_key="same",
    )
    assert (first.created, second.created) == (True, False)
    assert second.batch.pk == first.batch.pk
    assert account_balance_u(code=_cash(alice)) == 300
    assert LedgerEntry.objects.count() == 2


def test_same_key_with_other_lines_is_refused_and_writes_nothing():
    alice = UserFactory()
    ledger_post(
        [Line(_cash(alice), 300), Line(Account.EXTERNAL_DEPOSITS, -300)],
        ref_type="d",
        ref_id="9",
        idempotency_key="same",
    )
    before = _counts()
    with pytest.raises(IdempotencyConflict) as error:
        ledger_post(
            [Line(_cash(alice), 301), Line(Account.EXTERNAL_DEPOSITS, -301)],
            ref_type="d",
            ref_id="9",
            idempotency_key="same",
        )
    assert error.value.code == "idempotency_conflict"
    assert error.value.status == 422
    assert _counts() == before
    assert account_balance_u(code=_cash(alice)) == 300


@pytest.mark.parametrize("bad", [0, 1.5, "100", True, None, 10**13])
def test_bad_amounts_are_refused(bad):
    alice = UserFactory()
    with pytest.raises(InvalidAmount):
        ledger_post(
            [Line(_cash(alice), bad), Line(Account.EXTERNAL_DEPOSITS, bad)],
            ref_type="d",
            ref_id="1",
            idempotency_key="b",
        )
    assert _counts() == (0, 0)


def test_unknown_account_is_refused_and_writes_nothing():
    with pytest.raises(UnknownAccount):
        ledger_post(
            [Line("user:nobody:cash", 5), Line(Account.EXTERNAL_DEPOSITS, -5)],
            ref_type="d",
            ref_id="1",
            idempotency_key="u",
        )
    assert _counts() == (0, 0)


def test_set_based_post_moves_exact_amounts_and_is_idempotent():
    alice, bob = UserFactory(), UserFactory()
    sql = "SELECT %s AS account, %s AS amount_u UNION ALL SELECT %s, %s UNION ALL SELECT %s, %s"
    params = [_cash(alice), 40, _cash(bob), 60, Account.EXTERNAL_DEPOSITS, -100]
    first = ledger_post_from_sql(select_sql=sql, params=params, ref_type="bulk", ref_id="b1", idempotency_key="bulk-1")
    again = ledger_post_from_sql(select_sql=sql, params=params, ref_type="bulk", ref_id="b1", idempotency_key="bulk-1")
    assert (first.created, again.created, again.batch.pk) == (True, False, first.batch.pk)
    assert account_balance_u(code=_cash(alice)) == 40
    assert account_balance_u(code=_cash(bob)) == 60
    assert_ledger_invariants()


def test_set_based_post_refuses_unbalanced_and_overdraft():
    alice = UserFactory()
    account_ensure_user_cash(user=alice)
    before = _counts()
    with pytest.raises(UnbalancedBatch):
        ledger_post_from_sql(
            select_sql="SELECT %s AS account, %s AS amount_u UNION ALL SELECT %s, %s",
            params=[_cash(alice), 5, Account.EXTERNAL_DEPOSITS, -4],
            ref_type="bulk",
            ref_id="b",
            idempotency_key="bulk-u",
        )
    with pytest.raises(InsufficientFunds):
        ledger_post_from_sql(
            select_sql="SELECT %s AS account, %s AS amount_u UNION ALL SELECT %s, %s",
            params=[_cash(alice), -5, Account.EXTERNAL_DEPOSITS, 5],
            ref_type="bulk",
            ref_id="b",
            idempotency_key="bulk-o",
        )
    assert _counts() == before


class TestCachedBalancesFollowEntries(HypothesisTestCase):
    """Property: after any sequence of posts (accepted or refused), cached balance = Σ entries."""

    @hsettings(max_examples=25, deadline=None)
    @given(
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 5_000_000)),
            min_size=1,
            max_size=25,
        )
    )
    def test_random_posts(self, moves):
        users = [UserFactory() for _ in range(3)]
        _deposit(users[0], 3_000_000, f"seed-{users[0].pk}")
        expected = {_cash(u): 0 for u in users}
        expected[_cash(users[0])] = 3_000_000
        for index, (src, dst, amount_u) in enumerate(moves):
            source, target = _cash(users[src]), _cash(users[dst])
            if source == target:
                continue
            try:
                ledger_post(
                    [Line(source, -amount_u), Line(target, amount_u)],
                    ref_type="transfer",
                    ref_id=index,
                    idempotency_key=f"{users[0].pk}-{index}",
                )
            except InsufficientFunds:
                assert expected[source] < amount_u
                continue
            expected[source] -= amount_u
            expected[target] += amount_u
        for code, amount_u in expected.items():
            assert account_balance_u(code=code) == amount_u
        assert_ledger_invariants()


# --- a batch with a hot account moved last (a bet: cash -> pool), one statement on PostgreSQL ----------


def _pool() -> str:
    account_ensure_round_pool(round_code="20301202")
    return Account.round_pool_code("20301202")


def test_a_batch_with_a_hot_account_moves_both_and_writes_its_entries():
    alice = UserFactory()
    _deposit(alice, 5_000_000, "dep")
    pool = _pool()
    posted = ledger_post(
        [Line(_cash(alice), -1_250_000), Line(pool, 1_250_000)],
        ref_type="bet",
        ref_id=7,
        idempotency_key="bet:7",
        last=pool,
    )
    assert posted.created is True
    assert (account_balance_u(code=_cash(alice)), account_balance_u(code=pool)) == (3_750_000, 1_250_000)
    assert sorted(
        LedgerEntry.objects.filter(batch=posted.batch).values_list("account_id", "amount_u", "ref_id")
    ) == sorted([(_cash(alice), -1_250_000, "7"), (pool, 1_250_000, "7")])
    again = ledger_post(
        [Line(_cash(alice), -1_250_000), Line(pool, 1_250_000)],
        ref_type="bet",
        ref_id=7,
        idempotency_key="bet:7",
        last=pool,
    )
    assert (again.created, again.batch.pk) == (False, posted.batch.pk)
    assert account_balance_u(code=_cash(alice)) == 3_750_000
    assert_ledger_invariants()


def test_a_batch_with_a_hot_account_refuses_an_overdraft_and_writes_nothing():
    alice = UserFactory()
    _deposit(alice, 1_000_000, "dep")
    pool = _pool()
    before = _counts()
    with pytest.raises(InsufficientFunds) as refused, transaction.atomic():
        ledger_post(
            [Line(_cash(alice), -1_000_001), Line(pool, 1_000_001)],
            ref_type="bet",
            ref_id=8,
            idempotency_key="bet:8",
            last=pool,
        )
    assert refused.value.extra["balance_u"] == 1_000_000
    assert _counts() == before
    assert (account_balance_u(code=_cash(alice)), account_balance_u(code=pool)) == (1_000_000, 0)
    with pytest.raises(UnknownAccount), transaction.atomic():
        ledger_post(
            [Line(_cash(alice), -1), Line("round:20301203:pool", 1)],
            ref_type="bet",
            ref_id=9,
            idempotency_key="bet:9",
            last="round:20301203:pool",
        )
    assert _counts() == before
    assert account_balance_u(code=_cash(alice)) == 1_000_000


def test_tvl_reads_no_user_account_and_equals_the_sums_by_kind():
    """Total Cash is minus the sum of every other account (the ledger sums to zero): the same figure as
    summing the users' cash accounts, read without touching one of them."""
    alice, bob = UserFactory(), UserFactory()
    _deposit(alice, 7_000_000, "a")
    _deposit(bob, 3_000_001, "b")
    pool = _pool()
    ledger_post(
        [Line(_cash(bob), -1_000_000), Line(pool, 1_000_000)], ref_type="bet", ref_id=1, idempotency_key="k1", last=pool
    )
    ledger_post(
        [Line(_cash(alice), -2_000_000), Line(Account.WITHDRAWALS_PENDING, 2_000_000)],
        ref_type="withdrawal",
        ref_id=1,
        idempotency_key="w1",
    )
    with CaptureQueriesContext(connection) as queries:
        tvl = tvl_get()
    assert len(queries.captured_queries) == 1 and "user_cash" in queries.captured_queries[0]["sql"]
    by_kind = {
        kind: sum(Account.objects.filter(kind=kind).values_list("balance_u", flat=True))
        for kind in (Account.Kind.USER_CASH, Account.Kind.ROUND_POOL, Account.Kind.PENDING)
    }
    assert (tvl.cash_u, tvl.locked_u, tvl.pending_withdrawals_u) == (7_000_001, 1_000_000, 2_000_000)
    assert (by_kind["user_cash"], by_kind["round_pool"], by_kind["pending"]) == (7_000_001, 1_000_000, 2_000_000)
