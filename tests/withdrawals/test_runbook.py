"""The issue's "What it must show", line by line as the operating manual runs it."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from ledger.selectors import tvl_get, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, role_user
from withdrawals.services import withdrawal_approve

pytestmark = [pytest.mark.money, pytest.mark.django_db]


def test_simulated_deposit_withdrawal_tvl_process_and_audit(api, capsys, settings):
    settings.PAYOUT_ADAPTER = "simulated"
    settings.PAYOUT_SIMULATED_FAILURE_RATE = 0.0
    bettor = UserFactory()
    staff = role_user("finance")  # withdrawing on behalf of a user is finance's permission
    second = role_user("operator")  # the second person

    # curl -X POST /simulate/deposit_webhook -d '{"user_id": …, "amount_u": 1000000}'
    deposit = APIClient().post(
        "/simulate/deposit_webhook", {"user_id": str(bettor.pk), "amount_u": 1000000}, format="json"
    )
    assert deposit.status_code == 200
    assert user_balance_u(user_id=bettor.pk) == 1_000_000

    # curl -X POST /withdrawals -d '{"user_id": …, "amount_u": 500000}'  (a staff token)
    queued = api(staff).post("/withdrawals", {"user_id": str(bettor.pk), "amount_u": 500000}, format="json")
    assert queued.status_code == 201, queued.content
    assert queued.json()["status"] == "QUEUED"
    assert user_balance_u(user_id=bettor.pk) == 500_000
    # the bettor never registered that address (their simulated wallet): four-eyes before it is paid
    assert queued.json()["needs_approval"] is True
    withdrawal_approve(withdrawal_id=queued.json()["id"], acting_user=second, reason="runbook drill")

    # python -m cli.main tvl -> Pending Withdrawals shows it
    assert tvl_get().pending_withdrawals_u == 500_000
    call_command("tvl")
    out = capsys.readouterr().out
    assert "Pending Withdrawals" in out and "500000" in out.replace(",", "").replace(" ", "")

    # process_withdrawals completes it (simulated adapter)
    call_command("process_withdrawals")
    assert "1 completed" in capsys.readouterr().out
    assert api(bettor).get(f"/api/v1/withdrawals/{queued.json()['id']}").json()["status"] == "COMPLETED"

    # Pending returns to 0, ledger_audit passes
    assert tvl_get().pending_withdrawals_u == 0
    assert user_balance_u(user_id=bettor.pk) == 500_000
    call_command("ledger_audit")
    assert_ledger_invariants()
