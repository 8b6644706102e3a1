"""Statements: opening + lines = closing to the micro-USDC, each line in words, a summary per round, CSV."""

import csv
import io
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger.selectors import user_balance_u
from ledger.services import ledger_manual_adjust
from rounds.services import round_lock, round_open, round_settle
from tests.factories import UserFactory, fund, role_user
from tests.rounds.conftest import place_bet
from withdrawals.services import withdrawal_cancel, withdrawal_request

pytestmark = pytest.mark.money
WALLET = "0x" + "ab" * 20


@pytest.fixture
def september(db):
    """A bettor's August deposit, a September of betting, withdrawing and an adjustment, an October deposit."""
    alice, bob = UserFactory(email="alice@example.com"), UserFactory()
    with time_machine.travel("2025-08-20 15:00:00+00:00", tick=False):
        fund(alice, 50_000_000, tx_id="0xaugust")
        fund(bob, 50_000_000)
    with time_machine.travel("2025-09-08 14:00:00+00:00", tick=False):
        round_ = round_open(code="20250908")[0]
        bet = place_bet(round_, alice, "UP", 3_000_000)
        place_bet(round_, bob, "DOWN", 1_000_001)
    with time_machine.travel("2025-09-08 20:10:00+00:00", tick=False):
        round_lock(code=round_.code)
        round_settle(code=round_.code, result="UP", reason="test")
    with time_machine.travel("2025-09-15 12:00:00+00:00", tick=False):
        withdrawal, _ = withdrawal_request(user=alice, amount_u=2_000_000, destination=WALLET, source="api")
        withdrawal_cancel(withdrawal_id=withdrawal.pk, user=alice)
        kept, _ = withdrawal_request(user=alice, amount_u=1_500_000, destination=WALLET, source="api")
        ledger_manual_adjust(
            user=alice, amount_u=7, direction="credit", reason="rounding goodwill", acting_user=None,
            source="cli", idempotency_key="goodwill-1",
        )  # fmt: skip
    with time_machine.travel("2025-10-01 04:00:01+00:00", tick=False):  # 00:00:01 in New York: October
        fund(alice, 9_000_000, tx_id="0xoctober")
    return alice, bet, withdrawal, kept


def test_a_month_opens_and_closes_to_the_micro_usdc(september, api):
    alice, bet, withdrawal, kept = september
    body = api(alice).get("/api/v1/me/statement?from=2025-09-01&to=2025-09-30").json()
    assert body["opening_balance_u"] == 50_000_000
    # UP pool 3 000 000 wins DOWN 1 000 001 less the 1 % fee (10 000): alice is paid 3 000 000 + 990 001
    amounts = [line["amount_u"] for line in body["results"]]
    assert amounts == [-3_000_000, 3_990_001, -2_000_000, 2_000_000, -1_500_000, 7]
    assert body["closing_balance_u"] == 50_000_000 + sum(amounts) == 49_490_008
    assert body["closing_balance_u"] + 9_000_000 == user_balance_u(user_id=alice.pk)  # October's deposit after it
    assert [line["balance_after_u"] for line in body["results"]][-1] == body["closing_balance_u"]
    assert [line["description"] for line in body["results"]] == [
        f"Bet {bet.pk} on round 20250908 UP: 3.00 USDC staked",
        "Payout of round 20250908 (UP): 3.99 USDC",
        f"Withdrawal {withdrawal.pk} to {WALLET} (CANCELLED): 2.00 USDC",
        f"Withdrawal {withdrawal.pk} returned (CANCELLED): 2.00 USDC",
        f"Withdrawal {kept.pk} to {WALLET} (QUEUED): 1.50 USDC",
        "Manual credit by staff: 0.00 USDC — rounding goodwill",
    ]
    assert body["rounds"] == [
        {"round": "20250908", "result": "UP", "staked_u": 3_000_000, "won_u": 3_990_001, "net_u": 990_001}
    ]
    # the contract the runbook and clients use: count, results with amount_u and ref_type
    assert body["count"] == 6 and body["results"][0]["ref_type"] == "bet"


def test_without_a_period_it_is_the_whole_history(september, api):
    alice, *_ = september
    body = api(alice).get("/api/v1/me/statement").json()
    assert (body["opening_balance_u"], body["count"]) == (0, 8)
    assert body["closing_balance_u"] == user_balance_u(user_id=alice.pk) == 58_490_008
    assert body["results"][0]["description"] == "Deposit 0xaugust: 50.00 USDC"


def test_csv_by_format_or_accept(september, api):
    alice, *_ = september
    client = api(alice)
    for response in (
        client.get("/api/v1/me/statement?from=2025-09-01&to=2025-09-30&format=csv"),
        client.get("/api/v1/me/statement?from=2025-09-01&to=2025-09-30", HTTP_ACCEPT="text/csv"),
    ):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0][:3] == ["time (America/New_York)", "description", "amount_u"]
        assert rows[1][1:5] == ["Opening balance", "", "", "50000000"]
        assert rows[2][0] == "2025-09-08 10:00:00 EDT"
        assert rows[-1][1:5] == ["Closing balance", "", "", "49490008"]
        assert sum(int(row[2]) for row in rows[2:-1]) == 49_490_008 - 50_000_000


@pytest.mark.parametrize(
    "query", ["from=2025-13-01", "to=yesterday", "from=2025-09-30&to=2025-09-01", "to=9999-12-31", "from=" + "9" * 5000]
)
def test_a_bad_period_is_a_400(september, api, query):
    alice, *_ = september
    response = api(alice).get(f"/api/v1/me/statement?{query}")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_period")


def test_the_command_and_the_admin_show_the_same_statement(september, client):
    alice, *_ = september
    out = StringIO()
    call_command("statement", "--user", "ALICE@example.com", "--month", "2025-09", stdout=out)
    text = out.getvalue()
    assert "Opening balance: 50.00 USDC (50000000 u)" in text and "Closing balance: 49.49 USDC (49490008 u)" in text
    assert "20250908 UP: staked 3.00, won 3.99, net 0.99 USDC" in text
    out = StringIO()
    call_command("statement", "--user", "alice@example.com", "--month", "2025-09", "--csv", stdout=out)
    assert out.getvalue().splitlines()[-1].endswith("Closing balance,,,49490008,")
    for bad in (["--month", "2025-9x"], ["--month", "9999-12"], ["--user", "nobody@example.com"]):
        args = {"--user": "alice@example.com", "--month": "2025-09"}
        args.update(dict(zip(bad[::2], bad[1::2], strict=True)))
        with pytest.raises(CommandError, match=r"\[(invalid_period|unknown_user)\]"):
            call_command("statement", *[x for pair in args.items() for x in pair], stdout=StringIO())

    staff = role_user("auditor")
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(staff)
    page = client.get(f"/admin/betting/user/{alice.pk}/statement/?month=2025-09")
    assert page.status_code == 200
    html = page.content.decode()
    assert "50.00" in html and "49.49" in html and "Payout of round 20250908 (UP)" in html
    assert "2025-09-08 10:00:00 EDT" in html
    csv_page = client.get(f"/admin/betting/user/{alice.pk}/statement/?month=2025-09&format=csv")
    assert csv_page.content.decode().splitlines()[-1].endswith("Closing balance,,,49490008,")
    assert client.get(f"/admin/betting/user/{alice.pk}/statement/?month=nope").status_code == 200
    client.force_login(UserFactory(is_staff=True))  # staff who may not view users
    assert client.get(f"/admin/betting/user/{alice.pk}/statement/?month=2025-09").status_code in (302, 403)
