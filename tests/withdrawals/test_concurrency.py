"""Races on PostgreSQL with real threads: a webhook delivered 10 times at once credits once;
two processors side by side pay each withdrawal once; parallel requests never overdraw."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ledger.models import Account, LedgerBatch
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.withdrawals.helpers import ADDRESS, post_webhook, webhook_body
from withdrawals.models import Deposit, SimulatedPayout, Withdrawal
from withdrawals.services import withdrawal_request, withdrawals_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_ten_concurrent_deliveries_credit_once():
    bettor = UserFactory()
    body = webhook_body(tx_id="chain-race", user_id=str(bettor.pk), amount_u=1_234_567)
    responses = _race(10, lambda index: post_webhook(APIClient(), body))
    assert [getattr(r, "status_code", r) for r in responses] == [200] * 10
    assert sum(r.json()["credited"] for r in responses) == 1
    assert Deposit.objects.count() == 1
    assert LedgerBatch.objects.filter(ref_type="deposit").count() == 1
    assert user_balance_u(user_id=bettor.pk) == 1_234_567
    assert account_balance_u(code=Account.EXTERNAL_DEPOSITS) == -1_234_567
    assert_ledger_invariants()


def test_two_processors_side_by_side_pay_each_withdrawal_once():
    bettor = UserFactory()
    fund(bettor, 100_000_000)
    ids = [
        withdrawal_request(user=bettor, amount_u=1_000_000, destination=ADDRESS, source="api")[0].pk for _ in range(8)
    ]
    reports = _race(4, lambda index: withdrawals_process(source="beat", limit=3))
    completed = sorted(pk for report in reports for pk in report.completed)
    assert completed == sorted(ids)
    assert SimulatedPayout.objects.count() == 8
    assert set(Withdrawal.objects.values_list("status", flat=True)) == {"COMPLETED"}
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 8_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert_ledger_invariants()


def test_parallel_requests_never_overdraw():
    bettor = UserFactory()
    fund(bettor, 5_000_000)
    results = _race(
        8, lambda index: withdrawal_request(user=bettor, amount_u=1_000_000, destination=ADDRESS, source="api")[0]
    )
    queued = [r for r in results if isinstance(r, Withdrawal)]
    assert len(queued) == 5
    assert all(getattr(r, "code", "") == "insufficient_funds" for r in results if not isinstance(r, Withdrawal))
    assert user_balance_u(user_id=bettor.pk) == 0
    assert tvl_get().pending_withdrawals_u == 5_000_000
    assert_ledger_invariants()
