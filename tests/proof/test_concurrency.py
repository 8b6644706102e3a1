"""Cross-cutting races and faults on a real PostgreSQL, with real threads and committed transactions.

The single-area races (200 bets against one balance, 50 posts with one key, bets racing the
lock, racing settlements, webhook deliveries at once, two payout processors) live with their
areas in tests/betting, tests/rounds and tests/withdrawals. Here: every money path at once on
the same accounts, a settlement failing inside the database half-way through its payouts,
and completion racing failure on one withdrawal.
"""

import json
import random
import time
import uuid
from collections import Counter

import pytest
from django.db import DatabaseError, connection
from rest_framework.test import APIClient

from betting.models import Bet
from betting.services import bet_place
from common.errors import ApplicationError
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from ledger.services import ledger_manual_adjust
from rounds.models import Round, RoundSettlement
from rounds.services import round_lock, round_open, round_settle
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.proof.conftest import run_threads
from withdrawals.models import Deposit, Withdrawal
from withdrawals.services import (
    deposit_credit,
    withdrawal_cancel,
    withdrawal_complete,
    withdrawal_fail,
    withdrawal_request,
    withdrawals_process,
)
from withdrawals.webhooks import webhook_signature

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ADDRESS = "0x" + "cd" * 20
BET_ROUND = "20300115"  # future trading days (far off, so the test does not age): bet_place accepts bets on them
SETTLE_ROUNDS = ["20300107", "20300108", "20300109", "20300110", "20300111", "20300114"]


def _locked_round_with_bets(code: str, users, rng: random.Random) -> Round:
    round_open(code=code, force=True)
    for user in users:
        bet_place(
            user=user, side=rng.choice(["UP", "DOWN"]), stake_u=rng.randrange(100_000, 2_000_000), round_code=code
        )
    return round_lock(code=code)


def test_500_mixed_operations_from_8_workers_on_shared_accounts():
    # given: 6 bettors with 50 USDC each, one OPEN round to bet on, six LOCKED rounds to settle
    rng = random.Random(20261121)
    users = [UserFactory() for _ in range(6)]
    for user in users:
        fund(user, 50_000_000)
    round_open(code=BET_ROUND, force=True)
    for code in SETTLE_ROUNDS:
        _locked_round_with_bets(code, rng.sample(users, 4), rng)
    settle_queue = list(SETTLE_ROUNDS)
    outcomes: Counter = Counter()
    unexpected: list[str] = []

    def operation(worker_rng: random.Random) -> str:
        user = worker_rng.choice(users)  # every worker touches every account, in its own order
        kind = worker_rng.choice(
            ["bet", "bet", "bet", "deposit", "withdraw", "cancel", "process", "credit", "debit", "settle"]
        )
        if kind == "bet":
            bet_place(
                user=user,
                side=worker_rng.choice(["UP", "DOWN"]),
                stake_u=worker_rng.randrange(100_000, 5_000_000),
                round_code=BET_ROUND,
                idempotency_key=str(uuid.UUID(int=worker_rng.getrandbits(128))),
            )
        elif kind == "deposit":
            deposit_credit(
                user=user, amount_u=worker_rng.randrange(1, 3_000_000), tx_id=f"mix:{uuid.uuid4()}", source="system"
            )
        elif kind == "withdraw":
            withdrawal_request(
                user=user, amount_u=worker_rng.randrange(100_000, 4_000_000), destination=ADDRESS, source="api"
            )
        elif kind == "cancel":
            queued = Withdrawal.objects.filter(user=user, status="QUEUED").values_list("pk", flat=True).first()
            if queued is None:
                return "cancel:none"
            withdrawal_cancel(withdrawal_id=queued, user=user)
        elif kind == "process":
            withdrawals_process(limit=3, source="beat")
        elif kind in ("credit", "debit"):
            ledger_manual_adjust(
                user=user,
                amount_u=worker_rng.randrange(1, 1_000_000),
                direction=kind,
                reason="goodwill" if kind == "credit" else "correction",
                acting_user=None,
                source="cli",
                idempotency_key=f"mix:{uuid.uuid4()}",
            )
        elif kind == "settle":
            if not settle_queue:
                return "settle:none"
            code = worker_rng.choice(settle_queue)
            round_settle(code=code, result=worker_rng.choice(["UP", "DOWN", "VOID"]), source="cli")
        return kind

    def worker(index: int) -> None:
        worker_rng = random.Random(1000 + index)
        for _ in range(500 // 8 + (1 if index < 500 % 8 else 0)):
            try:
                outcomes[operation(worker_rng)] += 1
            except ApplicationError as exc:  # a refusal a client would get as a 4xx: fine
                outcomes[f"refused:{exc.code}"] += 1
            except Exception as exc:  # noqa: BLE001 - a deadlock or any 5xx-to-be is the failure
                unexpected.append(f"{exc.__class__.__name__}: {exc}")

    # when
    results = run_threads(8, worker)

    # then: no deadlock, no database error reached a caller, and every invariant holds
    assert [r for r in results if r is not None] == []
    assert unexpected == [], unexpected[:5]
    assert sum(outcomes.values()) == 500, outcomes
    print(f"\nmixed operations: {dict(sorted(outcomes.items()))}")
    assert_ledger_invariants()
    bet_round = Round.objects.get(code=BET_ROUND)
    accepted = sum(Bet.objects.filter(round=bet_round).values_list("stake_u", flat=True))
    assert account_balance_u(code=Account.round_pool_code(BET_ROUND)) == accepted
    assert bet_round.up_pool_u + bet_round.down_pool_u == accepted
    for settled in Round.objects.filter(status="SETTLED"):
        assert account_balance_u(code=Account.round_pool_code(settled.code)) == 0
        assert LedgerBatch.objects.filter(ref_type="settlement", ref_id=settled.code).count() == 1
    pending = sum(Withdrawal.objects.filter(status__in=["QUEUED", "PROCESSING"]).values_list("amount_u", flat=True))
    assert tvl_get().pending_withdrawals_u == pending
    for user in users:
        assert user_balance_u(user_id=user.pk) >= 0


def test_settlement_failing_inside_the_payout_insert_commits_nothing_and_the_rerun_settles():
    # given: a LOCKED round with 6 winners and 3 losers
    round_open(code=BET_ROUND, force=True)
    winners = [UserFactory() for _ in range(6)]
    losers = [UserFactory() for _ in range(3)]
    for user in winners + losers:
        fund(user, 10_000_000)
    for user in winners:
        bet_place(user=user, side="UP", stake_u=1_000_000)
    for user in losers:
        bet_place(user=user, side="DOWN", stake_u=3_000_000)
    round_lock(code=BET_ROUND)
    entries, batches = LedgerEntry.objects.count(), LedgerBatch.objects.count()
    # a database fault on the 4th payout line, i.e. after three winners' entries were written
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE OR REPLACE FUNCTION proof_fail_on_fourth_payout() RETURNS trigger AS $$
            BEGIN
              IF NEW.ref_type = 'settlement' AND NEW.account LIKE 'user:%%' THEN
                PERFORM set_config(
                  'proof.payouts',
                  (COALESCE(NULLIF(current_setting('proof.payouts', true), ''), '0')::int + 1)::text,
                  true
                );
                IF current_setting('proof.payouts')::int >= 4 THEN
                  RAISE EXCEPTION 'injected fault after % payout lines', current_setting('proof.payouts')::int - 1;
                END IF;
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER proof_fail_on_fourth_payout BEFORE INSERT ON ledger_entries
              FOR EACH ROW EXECUTE FUNCTION proof_fail_on_fourth_payout();
            """
        )

    # when
    try:
        with pytest.raises(DatabaseError, match="injected fault after 3 payout lines"):
            round_settle(code=BET_ROUND, result="UP", source="cli")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER proof_fail_on_fourth_payout ON ledger_entries")
            cursor.execute("DROP FUNCTION proof_fail_on_fourth_payout()")

    # then: nothing committed, the round still LOCKED, the pool whole
    assert Round.objects.get(code=BET_ROUND).status == "LOCKED"
    assert not RoundSettlement.objects.exists()
    assert (LedgerEntry.objects.count(), LedgerBatch.objects.count()) == (entries, batches)
    assert set(Bet.objects.values_list("status", "payout_u")) == {("PLACED", 0)}
    assert account_balance_u(code=Account.round_pool_code(BET_ROUND)) == 15_000_000
    assert_ledger_invariants()

    # when: the rerun, and a racing twin of it
    outcomes = run_threads(2, lambda i: round_settle(code=BET_ROUND, result="UP", source="cli"))

    # then: paid once. DOWN pool 9 000 000, fee 1 % = 90 000; each UP stake 1 000 000 gets 1 485 000 extra
    assert sorted(type(o).__name__ for o in outcomes) == ["RoundAlreadySettled", "RoundSettlement"]
    settlement = RoundSettlement.objects.get()
    assert (settlement.fee_u, settlement.paid_out_u, settlement.dust_u) == (90_000, 14_910_000, 0)
    for user in winners:
        assert user_balance_u(user_id=user.pk) == 9_000_000 + 2_485_000
    for user in losers:
        assert user_balance_u(user_id=user.pk) == 7_000_000
    assert account_balance_u(code=Account.round_pool_code(BET_ROUND)) == 0
    assert LedgerBatch.objects.filter(ref_type="settlement").count() == 1
    assert_ledger_invariants()


def test_complete_racing_fail_on_one_withdrawal_resolves_it_exactly_once():
    # given: a withdrawal claimed for payout (PROCESSING), its lease already over
    bettor = UserFactory()
    fund(bettor, 10_000_000)
    withdrawal, _ = withdrawal_request(user=bettor, amount_u=4_000_000, destination=ADDRESS, source="api")
    Withdrawal.objects.filter(pk=withdrawal.pk).update(status="PROCESSING", lease_until=None)
    assert user_balance_u(user_id=bettor.pk) == 6_000_000

    # when: four completions and four failures at once
    def resolve(index: int):
        if index % 2:
            return withdrawal_complete(withdrawal_id=withdrawal.pk, tx_hash=f"0x{index:064x}", source="cli")
        return withdrawal_fail(
            withdrawal_id=withdrawal.pk, reason="custodian refused", source="cli", payout_checked=True
        )

    outcomes = run_threads(8, resolve)

    # then: one winner, seven refusals that wrote nothing, and money either paid or refunded, never both
    winners = [o for o in outcomes if isinstance(o, Withdrawal)]
    refusals = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert (len(winners), len(refusals)) == (1, 7), outcomes
    assert {r.code for r in refusals} == {"invalid_transition"} or all(
        isinstance(r, ApplicationError) for r in refusals
    )
    final = Withdrawal.objects.get(pk=withdrawal.pk)
    assert LedgerBatch.objects.filter(ref_type="withdrawal", ref_id=str(withdrawal.pk)).count() == 2  # reserve, release
    if final.status == "COMPLETED":
        assert (user_balance_u(user_id=bettor.pk), account_balance_u(code=Account.EXTERNAL_WITHDRAWALS)) == (
            6_000_000,
            4_000_000,
        )
    else:
        assert final.status == "FAILED"
        assert (user_balance_u(user_id=bettor.pk), account_balance_u(code=Account.EXTERNAL_WITHDRAWALS)) == (
            10_000_000,
            0,
        )
    assert account_balance_u(code=Account.WITHDRAWALS_PENDING) == 0
    assert_ledger_invariants()


def test_deposit_webhook_delivered_ten_times_half_of_them_at_once_credits_once():
    # given: one signed delivery of a 7 654 321 u deposit
    bettor = UserFactory()
    body = json.dumps(
        {"tx_id": "0xfeed-proof", "user_id": str(bettor.pk), "amount_u": 7_654_321, "timestamp": int(time.time())}
    ).encode()
    headers = {"HTTP_X_SIGNATURE": webhook_signature(raw_body=body)}

    def deliver(index: int):
        return APIClient().post("/api/v1/deposits/webhook", body, content_type="application/json", **headers)

    # when: five deliveries one after another, then five at the same instant
    sequential = [deliver(i) for i in range(5)]
    parallel = run_threads(5, deliver)

    # then: ten 2xx answers, one deposit, one ledger batch, the amount credited once
    statuses = [getattr(r, "status_code", r) for r in sequential + parallel]
    assert all(status in (200, 201) for status in statuses), statuses
    assert Deposit.objects.filter(tx_id="0xfeed-proof").count() == 1
    assert LedgerBatch.objects.filter(ref_type="deposit", idempotency_key="deposit:0xfeed-proof").count() == 1
    assert user_balance_u(user_id=bettor.pk) == 7_654_321
    assert_ledger_invariants()
