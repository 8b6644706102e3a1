"""Each money rule is stated once and every door asks it (issue: rooms and doors).

- The ledger's set-based paths (ledger_post_from_sql, ledger_post_many) refuse what ledger_post
  refuses: a line above the bound, an overdraft of a protected account (the house unless allowed),
  a replayed key with other lines.
- Bets and rounds change each other's tables only through the owner's door: round_pool_raise
  (rounds) and bets_settle (betting), both inside the caller's transaction.
- One refusal class per code: permission_denied, round_not_open, idempotency_conflict.
"""

import hashlib
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from betting.services import bet_place
from betting.settlement import bets_settle
from common.errors import IdempotencyConflict, PermissionDenied
from common.idempotency import request_digest
from ledger.exceptions import InsufficientFunds, InvalidAmount
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u
from ledger.services import Line, Posting, ledger_manual_adjust, ledger_post, ledger_post_from_sql, ledger_post_many
from rounds.exceptions import BettingClosed, NoCurrentRound, RoundNotOpen
from rounds.models import Round
from rounds.selectors import round_transition_refusal
from rounds.services import round_lock, round_pool_raise, round_settle
from tests.betting.conftest import round_create
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.money, pytest.mark.django_db]

TWO_LINES_SQL = "SELECT %s AS account, %s AS amount_u UNION ALL SELECT %s, %s"


def _written() -> tuple[int, int]:
    return LedgerBatch.objects.count(), LedgerEntry.objects.count()


def _every_path(lines: list[Line], key: str, **options):
    """The same batch through ledger_post, ledger_post_from_sql and ledger_post_many: three callables
    (ledger_post_many's answers its one posting)."""
    params = [value for line in lines for value in (line.account, line.amount_u)]
    return (
        lambda: ledger_post(lines, ref_type="t", ref_id=key, idempotency_key=f"{key}-py", **options),
        lambda: ledger_post_from_sql(
            select_sql=TWO_LINES_SQL, params=params, ref_type="t", ref_id=key, idempotency_key=f"{key}-sql", **options
        ),
        lambda: ledger_post_many([Posting(lines, ref_type="t", ref_id=key, idempotency_key=f"{key}-many")], **options)[
            0
        ],
    )


# --- the ledger: one set of rules for both writers -------------------------------------------


def test_every_path_refuse_a_line_above_max_amount(settings):
    settings.MAX_AMOUNT_U = 1_000_000
    alice = UserFactory()
    cash = Account.user_cash_code(alice.pk)
    before = _written()
    for post in _every_path([Line(cash, 1_000_001), Line(Account.EXTERNAL_DEPOSITS, -1_000_001)], "big"):
        with pytest.raises(InvalidAmount, match="must not exceed 1000000 u"):
            post()
    # the user-cash form and a fixed line are held to the same bound
    with pytest.raises(InvalidAmount):
        ledger_post_from_sql(
            user_cash_sql="SELECT %s AS user_id, %s AS amount_u",
            params=[alice.pk, 1_000_001],
            lines=[Line(Account.EXTERNAL_DEPOSITS, -1_000_001)],
            ref_type="t",
            ref_id="big",
            idempotency_key="big-user",
        )
    assert _written() == before
    # exactly the bound is accepted by both
    for post in _every_path([Line(cash, 1_000_000), Line(Account.EXTERNAL_DEPOSITS, -1_000_000)], "edge"):
        assert post().created is True
    assert account_balance_u(code=cash) == 3_000_000
    assert_ledger_invariants()


def test_every_path_refuse_to_overdraw_the_house_unless_allowed():
    alice = UserFactory()
    cash = Account.user_cash_code(alice.pk)
    assert account_balance_u(code=Account.HOUSE) == 0
    before = _written()
    goodwill = [Line(cash, 700), Line(Account.HOUSE, -700)]
    for post in _every_path(goodwill, "goodwill"):
        with pytest.raises(InsufficientFunds, match="Insufficient funds in house"):
            post()
    assert _written() == before
    for post in _every_path(goodwill, "goodwill-ok", allow_negative=frozenset({Account.HOUSE})):
        assert post().created is True
    assert account_balance_u(code=Account.HOUSE) == -2_100
    assert account_balance_u(code=cash) == 2_100
    assert_ledger_invariants()


def test_every_path_refuse_to_overdraw_a_user_and_allow_the_world():
    alice = UserFactory()
    cash = Account.user_cash_code(alice.pk)
    fund(alice, 500)
    before = _written()
    for post in _every_path([Line(cash, -501), Line(Account.EXTERNAL_WITHDRAWALS, 501)], "over"):
        with pytest.raises(InsufficientFunds):
            post()
    assert _written() == before
    assert account_balance_u(code=cash) == 500


def test_set_based_replay_with_other_lines_is_a_conflict_and_the_same_is_a_replay():
    alice = UserFactory()
    cash = Account.user_cash_code(alice.pk)
    first = ledger_post_from_sql(
        select_sql=TWO_LINES_SQL,
        params=[cash, 300, Account.EXTERNAL_DEPOSITS, -300],
        ref_type="d",
        ref_id="9",
        idempotency_key="same",
    )
    before = _written()
    with pytest.raises(IdempotencyConflict) as error:
        ledger_post_from_sql(
            select_sql=TWO_LINES_SQL,
            params=[cash, 301, Account.EXTERNAL_DEPOSITS, -301],
            ref_type="d",
            ref_id="9",
            idempotency_key="same",
        )
    assert (error.value.code, error.value.status) == ("idempotency_conflict", 422)
    assert _written() == before
    batch, created = ledger_post_from_sql(
        select_sql=TWO_LINES_SQL,
        params=[cash, 300, Account.EXTERNAL_DEPOSITS, -300],
        ref_type="d",
        ref_id="9",
        idempotency_key="same",
    )
    assert (batch.pk, created) == (first.batch.pk, False)
    assert account_balance_u(code=cash) == 300


def test_digests_are_the_ones_already_stored():
    """common.idempotency.request_digest is json.dumps' default form: old batches and bets still replay."""
    payload = {"ref": ["deposit", "d1"], "lines": [("external:deposits", -5), ("user:x:cash", 5)]}
    assert (
        request_digest(payload) == hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    )


# --- rounds and bets: each writes its own table, through the owner's door ----------------------


def test_round_pool_raise_is_the_rounds_door_for_a_stake():
    round_ = round_create()
    now = timezone.now()
    with transaction.atomic():
        raised = round_pool_raise(round_code=None, side="DOWN", stake_u=1_234_567, now=now)
    assert (raised.pk, raised.code) == (round_.pk, round_.code)
    round_.refresh_from_db()
    assert (round_.up_pool_u, round_.down_pool_u) == (0, 1_234_567)
    # past lock_at on the clock, still OPEN: refused and nothing raised
    with transaction.atomic(), pytest.raises(BettingClosed):
        round_pool_raise(round_code=round_.code, side="UP", stake_u=5, now=round_.lock_at + timedelta(seconds=1))
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.LOCKED)
    with transaction.atomic(), pytest.raises(RoundNotOpen):
        round_pool_raise(round_code=round_.code, side="UP", stake_u=5, now=now)
    with transaction.atomic(), pytest.raises(NoCurrentRound):
        Round.objects.update(status=Round.Status.SETTLED)
        round_pool_raise(round_code=None, side="UP", stake_u=5, now=now)
    round_.refresh_from_db()
    assert (round_.up_pool_u, round_.down_pool_u) == (0, 1_234_567)


@pytest.mark.django_db(transaction=True)
def test_the_doors_refuse_to_run_outside_the_callers_transaction():
    """Their row lock and their write belong to the caller's transaction; alone they would be a half step."""
    round_ = round_create()
    with pytest.raises(RuntimeError):
        round_pool_raise(round_code=round_.code, side="UP", stake_u=5, now=timezone.now())
    with pytest.raises(RuntimeError):
        bets_settle(round_id=round_.pk, result="VOID")
    round_.refresh_from_db()
    assert (round_.up_pool_u, round_.down_pool_u) == (0, 0)


def test_the_bet_returned_carries_its_round_not_a_stuck_attribute(funded_bettor):
    round_create()
    bet, created = bet_place(user=funded_bettor, side="UP", stake_u=1_000_000)
    assert created and bet.round.code == "20250908"
    assert "round_code" not in vars(bet)


def test_one_class_per_code_round_not_open():
    """A bet on a locked round and a second lock answer with the same class, from one transition rule."""
    round_ = round_create()
    bettor = UserFactory()
    fund(bettor, 5_000_000)
    round_lock(code=round_.code)
    with pytest.raises(RoundNotOpen) as bet_refusal:
        bet_place(user=bettor, side="UP", stake_u=1_000_000)
    with pytest.raises(RoundNotOpen) as lock_refusal:
        round_lock(code=round_.code)
    assert bet_refusal.value.code == lock_refusal.value.code == "round_not_open"
    round_.refresh_from_db()
    assert round_transition_refusal(round_=round_, action="lock").code == "round_not_open"
    assert round_transition_refusal(round_=round_, action="settle") is None


def test_every_missing_permission_is_the_one_permission_denied():
    round_ = round_create()
    nobody = UserFactory(is_staff=True)
    bettor = UserFactory()
    fund(bettor, 5_000_000)
    refusals = [
        lambda: round_lock(code=round_.code, acting_user=nobody, source="admin"),
        lambda: round_settle(code=round_.code, result="VOID", acting_user=nobody, reason="x", source="admin"),
        lambda: ledger_manual_adjust(
            user=bettor,
            amount_u=5,
            direction="credit",
            reason="x",
            acting_user=nobody,
            source="admin",
            idempotency_key="adj",
        ),
        lambda: bet_place(user=bettor, side="UP", stake_u=1_000_000, acting_user=nobody, source="admin"),
    ]
    for refuse in refusals:
        with pytest.raises(PermissionDenied) as error:
            refuse()
        assert (type(error.value), error.value.code, error.value.status) == (PermissionDenied, "permission_denied", 403)
    # a permission without the staff flag is not enough either (permission_require checks both)
    holder = UserFactory(is_staff=False)
    holder.user_permissions.add(Permission.objects.get(codename="lock_round"))
    with pytest.raises(PermissionDenied):
        round_lock(code=round_.code, acting_user=type(holder).objects.get(pk=holder.pk), source="admin")
    assert Round.objects.get(pk=round_.pk).status == Round.Status.OPEN
