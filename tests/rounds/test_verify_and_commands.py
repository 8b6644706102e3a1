from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import ApprovalRequest
from audit.models import AuditEvent
from betting.models import Bet
from ledger.models import LedgerEntry
from ledger.selectors import user_balance_u
from marketdata.models import OfficialClose
from rounds.models import Round
from rounds.selectors import round_verify
from rounds.services import round_lock, round_open, round_settle
from tests.factories import role_user
from tests.rounds.conftest import place_bet

pytestmark = [pytest.mark.django_db, pytest.mark.money]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _settled_round(users):
    round_, _ = round_open(code="20250908")
    a, b, c = users(3)
    place_bet(round_, a, "UP", 1_000_000)
    place_bet(round_, b, "UP", 3_000_000)
    place_bet(round_, c, "DOWN", 2_000_000)
    round_lock(code=round_.code)
    round_settle(code=round_.code, result="UP")
    return round_


def test_commit_chain_links_each_round_to_the_previous():
    first, _ = round_open(code="20250908")
    second, _ = round_open(code="20250909")
    assert first.prev_commit_hash == ""
    assert second.prev_commit_hash == first.commit_hash
    assert len(second.commit_hash) == 64 and second.commit_hash != first.commit_hash
    assert round_verify(code="20250909").ok


def test_verify_a_settled_round_matches(users):
    _settled_round(users)
    report = round_verify(code="20250908")
    assert (report.commit_hash_ok, report.chain_ok, report.digest_ok) == (True, True, True)
    assert "verifies: match" in run("verify_round", "--code", "20250908")


def test_tampering_with_a_bet_breaks_the_digest(users):
    round_ = _settled_round(users)
    bet = Bet.objects.filter(round=round_, status="WON").order_by("id").first()
    Bet.objects.filter(pk=bet.pk).update(payout_u=bet.payout_u + 1)

    report = round_verify(code="20250908")

    assert report.commit_hash_ok and report.digest_ok is False
    with pytest.raises(CommandError, match="does NOT verify"):
        run("verify_round", "--code", "20250908")


def test_tampering_with_round_parameters_breaks_the_commit_hash_and_the_chain():
    round_open(code="20250908")
    round_open(code="20250909")
    Round.objects.filter(code="20250908").update(fee_bps=5000)
    assert round_verify(code="20250908").commit_hash_ok is False
    Round.objects.filter(code="20250908").update(fee_bps=100, commit_hash="0" * 64)
    assert round_verify(code="20250909").chain_ok is False


def test_runbook_commands_open_lock_settle(users):
    out = run("open_round", "--code", "20250908")
    assert "Round 20250908 OPEN" in out and "Commit hash" in out
    round_ = Round.objects.get(code="20250908")
    a, b = users(2)
    place_bet(round_, a, "UP", 1_000_000)
    place_bet(round_, b, "DOWN", 1_000_000)
    assert "LOCKED" in run("lock_round", "--code", "20250908")
    out = run("settle_round", "--code", "20250908", "--result", "UP")  # by hand: a four-eyes request
    request = ApprovalRequest.objects.get(kind="round_result", target="20250908")
    assert f"--approve {request.pk}" in out and Round.objects.get(code="20250908").status == "LOCKED"
    role_user("operator", email="second@example.com")
    out = run("settle_round", "--approve", str(request.pk), "--actor", "second@example.com")
    assert "SETTLED: UP" in out and "Fee:        10000 u" in out
    assert user_balance_u(user_id=a.pk) == 10_000_000_000 + 990_000


def test_settle_again_from_the_cli_is_refused_and_writes_nothing(users):
    _settled_round(users)
    entries, audits = LedgerEntry.objects.count(), AuditEvent.objects.count()
    with pytest.raises(CommandError, match=r"already settled.*\[round_already_settled\]"):
        run("settle_round", "--code", "20250908", "--result", "AUTO")
    assert (LedgerEntry.objects.count(), AuditEvent.objects.count()) == (entries, audits)


def test_commands_refuse_bad_input():
    with pytest.raises(CommandError, match="invalid_round_code"):
        run("open_round", "--code", "2025-09-08")
    with pytest.raises(CommandError, match="market_closed"):
        run("open_round", "--code", "20250906")
    assert "OPEN" in run("open_round", "--code", "20250906", "--force")
    with pytest.raises(CommandError, match="unknown_round"):
        run("lock_round", "--code", "20250909")
    with pytest.raises(CommandError):
        run("settle_round", "--code", "20250906", "--result", "SIDEWAYS")
    with pytest.raises(CommandError, match="round_not_locked"):
        run("settle_round", "--code", "20250906", "--result", "UP")
    with pytest.raises(CommandError, match="unknown_round"):
        run("verify_round", "--code", "20250909")


def test_settle_auto_without_close_from_the_cli(users):
    round_open(code="20250908")
    round_lock(code="20250908")
    with pytest.raises(CommandError, match="no_official_close"):
        run("settle_round", "--code", "20250908", "--result", "AUTO")
    assert Round.objects.get(code="20250908").status == "LOCKED"


def test_set_close_command():
    out = run("set_close", "--symbol", "ndx", "--date", "2025-09-08", "--price", "23762.10")
    assert "NDX 2025-09-08: 23762.10 (manual)" in out
    run("set_close", "--symbol", "NDX", "--date", "2025-09-08", "--price", "23762.2")
    close = OfficialClose.objects.get(symbol="NDX", date=date(2025, 9, 8))
    assert str(close.price) == "23762.200000"
    assert AuditEvent.objects.filter(action="marketdata.set_close").count() == 2
    for bad in (["--price", "-1"], ["--price", "abc"], ["--price", "1.0000001"]):
        with pytest.raises(CommandError, match="invalid_price"):
            run("set_close", "--symbol", "NDX", "--date", "2025-09-09", *bad)
    with pytest.raises(CommandError, match="invalid_date"):
        run("set_close", "--symbol", "NDX", "--date", "2025-02-30", "--price", "1")
    assert OfficialClose.objects.count() == 1


def test_round_commands_take_actor_check_its_permission_and_name_it(users):
    from tests.factories import role_user

    run("open_round", "--code", "20250908")
    round_ = Round.objects.get(code="20250908")
    a, b = users(2)
    place_bet(round_, a, "UP", 1_000_000)
    place_bet(round_, b, "DOWN", 1_000_000)
    role_user("auditor", email="aud@example.com")
    operator = role_user("operator", email="op@example.com")
    # the auditor may not lock: refused in the service, nothing written
    with pytest.raises(CommandError, match=r"permission_denied"):
        run("lock_round", "--code", "20250908", "--actor", "aud@example.com")
    assert Round.objects.get(code="20250908").status == "OPEN"
    run("lock_round", "--code", "20250908", "--actor", "op@example.com")
    run("settle_round", "--code", "20250908", "--result", "UP", "--reason", "drill", "--actor", "op@example.com")
    second = role_user("operator", email="op2@example.com")
    request = ApprovalRequest.objects.get(kind="round_result")
    run("settle_round", "--approve", str(request.pk), "--actor", "op2@example.com")
    events = AuditEvent.objects.filter(action__in=["round.lock", "approval.request", "round.settle"]).order_by("id")
    assert [(e.action, e.actor, e.actor_label) for e in events] == [
        ("round.lock", operator, "op@example.com"),
        ("approval.request", operator, "op@example.com"),
        ("round.settle", second, "op2@example.com"),
    ]
    assert user_balance_u(user_id=a.pk) == 10_000_000_000 + 990_000
