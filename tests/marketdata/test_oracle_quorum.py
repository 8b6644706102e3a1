"""The official close by quorum, against a local stub of the three preset vendors.

What it must show: two sources agree and one is wrong -> `settle_round --result AUTO` settles by
quorum and the round's evidence shows the wrong one rejected; only one agreeing -> the round
stays LOCKED and a P1 alert is open; the manual path still settles it.
"""

import hashlib
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from marketdata.models import CloseCheck, OfficialClose, PriceSource
from marketdata.services import official_close_resolve, official_close_set
from marketdata.stub_vendors import (
    AV_QUERY,
    STOOQ_CLOSE,
    TD_SERIES,
    alphavantage_daily,
    stooq_daily,
    twelvedata_series,
)
from ops.alerts import alerts_evaluate
from ops.models import Alert
from rounds.models import Round
from rounds.services import round_lifecycle_tick, round_lock, round_open
from tests.factories import UserFactory
from tests.rounds.conftest import place_bet

pytestmark = [pytest.mark.django_db, pytest.mark.money]  # settlement pays out: both databases
NY = ZoneInfo("America/New_York")
MON, FRI = date(2025, 9, 8), date(2025, 9, 5)  # the round's day and the previous trading day


def at(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.fixture
def locked_round(users):
    up, down = users(2)
    with time_machine.travel(at(2025, 9, 8, 9, 0), tick=False):
        round_, _ = round_open(code="20250908")
        place_bet(round_, up, "UP", 3_000_000)
        place_bet(round_, down, "DOWN", 1_000_000)
        round_lock(code="20250908")
    return round_


def serve(stub, *, stooq: str, alphavantage: str, twelvedata: str, previous: str = "23000.00"):
    stub.set(STOOQ_CLOSE, stooq_daily({FRI: previous, MON: stooq}))
    stub.set(AV_QUERY, alphavantage_daily({FRI: previous, MON: alphavantage}))
    stub.set(TD_SERIES, twelvedata_series({FRI: previous, MON: twelvedata}))


def test_two_agree_one_wrong_settles_by_quorum_with_the_wrong_one_rejected(vendors, locked_round, client):
    serve(vendors, stooq="23100.50", alphavantage="23100.50", twelvedata="23500.00")
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False):
        call_command("settle_round", "--code", "20250908", "--result", "AUTO")
    round_ = Round.objects.get(code="20250908")
    assert (round_.status, round_.result) == ("SETTLED", "UP")
    assert (round_.close_price, round_.close_source) == (Decimal("23100.500000"), "quorum")
    assert (round_.reference_price, round_.reference_source) == (Decimal("23000.000000"), "quorum")

    evidence = client.get("/api/v1/rounds/20250908").json()["oracle_evidence"]
    close = evidence["close"]
    assert (close["outcome"], close["price"], close["quorum"], close["max_deviation_bps"]) == (
        "ACCEPTED", "23100.500000", 2, 5,
    )  # fmt: skip
    verdicts = {q["source"]: (q["price"], q["accepted"], q["reason"]) for q in close["quotes"]}
    assert verdicts == {
        "alphavantage": ("23100.500000", True, ""),
        "stooq": ("23100.500000", True, ""),
        "twelvedata": ("23500.000000", False, "deviation"),
    }
    # each quote names the hash of the vendor's raw answer: here, Stooq's CSV for the Monday
    stooq_body = stooq_daily({FRI: "23000.00", MON: "23100.50"})({"d1": "20250908", "d2": "20250908"}, {})[2]
    stooq_quote = next(q for q in close["quotes"] if q["source"] == "stooq")
    assert stooq_quote["payload_sha256"] == hashlib.sha256(stooq_body).hexdigest()
    assert stooq_quote["ts"] == "2025-09-08T20:00:00+00:00"  # an end-of-day date: that day's 16:00 ET
    assert [q["accepted"] for q in evidence["reference"]["quotes"]] == [True, True, True]
    # the wrong source's health dropped (Monday's answer rejected, Friday's fine), the others' did not
    health = {s.name: (s.recent, s.rejected) for s in PriceSource.objects.exclude(kind="manual")}
    assert health == {"alphavantage": ("11", {}), "stooq": ("11", {}), "twelvedata": ("01", {"deviation": 1})}


def test_only_one_agreeing_stays_locked_with_a_p1_alert_then_the_manual_path_settles(vendors, locked_round):
    serve(vendors, stooq="23100.50", alphavantage="23500.00", twelvedata="23100.50")
    vendors.set(TD_SERIES, (200, "text/html", b"<!DOCTYPE html><html><body>Rate limited</body></html>", 0.0))
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False):
        with pytest.raises(CommandError) as refused:
            call_command("settle_round", "--code", "20250908", "--result", "AUTO")
        assert "no_official_close" in str(refused.value)
        assert "sources disagree by more than 5 bps: alphavantage 23500.000000, stooq 23100.500000" in str(
            refused.value
        )
        alert = Alert.objects.get(key="oracle_no_quorum:20250908")
        assert (alert.status, alert.severity) == ("OPEN", "P1")
        assert "2025-09-08: sources disagree by more than 5 bps" in alert.summary
        # the rules see it too, so the minute's evaluation keeps it open
        alerts_evaluate()
        alert.refresh_from_db()
        assert alert.status == "OPEN"
    round_ = Round.objects.get(code="20250908")
    assert (round_.status, round_.result) == ("LOCKED", None)
    assert not OfficialClose.objects.filter(date=MON).exists()
    check = CloseCheck.objects.get(date=MON)
    assert check.outcome == "NO_QUORUM"
    assert {q.source: q.reason for q in check.quotes.all()} == {
        "alphavantage": "no_quorum", "stooq": "no_quorum", "twelvedata": "html",
    }  # fmt: skip
    # the manual path of today: an operator verifies the close and enters it, AUTO settles from it
    with time_machine.travel(at(2025, 9, 8, 16, 30), tick=False):
        operator = UserFactory(is_staff=True)
        operator.user_permissions.add(Permission.objects.get(codename="change_officialclose"))
        official_close_set(symbol="NDX", day=MON, price="23100.50", acting_user=operator, reason="checked Nasdaq.com")
        call_command("settle_round", "--code", "20250908", "--result", "AUTO")
        alerts_evaluate()
    round_.refresh_from_db()
    assert (round_.status, round_.result, round_.close_source) == ("SETTLED", "UP", "manual")
    assert Alert.objects.get(key="oracle_no_quorum:20250908").status == "RESOLVED"


def test_a_manual_close_wins_and_no_source_is_asked(vendors):
    OfficialClose.objects.create(symbol="NDX", date=MON, price=Decimal("1.5"), source="manual")
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False):
        resolution = official_close_resolve(symbol="NDX", day=MON)
    assert (resolution.price, resolution.source, resolution.checked) == (Decimal("1.500000"), "manual", False)
    assert vendors.requests == []


def test_before_the_close_no_source_is_asked(vendors):
    serve(vendors, stooq="1", alphavantage="1", twelvedata="1")
    with time_machine.travel(at(2025, 9, 8, 15, 59, 59), tick=False):
        resolution = official_close_resolve(symbol="NDX", day=MON)
    assert resolution.reason == "the close of 2025-09-08 has not happened yet"
    assert (vendors.requests, CloseCheck.objects.count()) == ([], 0)


def test_no_enabled_source_keeps_todays_message(locked_round):
    PriceSource.objects.update(enabled=False)
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False), pytest.raises(CommandError) as refused:
        call_command("settle_round", "--code", "20250908", "--result", "AUTO")
    assert "The oracle has no official close (2025-09-08)" in str(refused.value)
    assert CloseCheck.objects.count() == 0


def test_the_beat_retries_through_the_grace_and_then_an_overdue_round_until_it_settles(vendors, locked_round, settings):
    settings.ROUND_SETTLE_GRACE_SECONDS = 300
    settings.ORACLE_OVERDUE_RETRY_SECONDS = 300
    serve(vendors, stooq="23100.50", alphavantage="23500.00", twelvedata="23900.00")  # nobody agrees
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False) as clock:
        assert round_lifecycle_tick().waiting_for_close == ["20250908"]
        clock.move_to(at(2025, 9, 8, 16, 7, 30))
        assert round_lifecycle_tick().waiting_for_close == ["20250908"]
        clock.move_to(at(2025, 9, 8, 16, 10))
        assert round_lifecycle_tick().overdue == ["20250908"]
        checks = CloseCheck.objects.filter(date=MON).count()
        clock.move_to(at(2025, 9, 8, 16, 12))
        quiet = round_lifecycle_tick()  # overdue: the sources are asked at most every 300 s
        assert (quiet.still_overdue, CloseCheck.objects.filter(date=MON).count()) == ([], checks)
        clock.move_to(at(2025, 9, 8, 16, 15))
        assert round_lifecycle_tick().still_overdue == ["20250908"]
        serve(vendors, stooq="23100.50", alphavantage="23100.50", twelvedata="23900.00")  # a vendor corrects itself
        clock.move_to(at(2025, 9, 8, 16, 20))
        assert round_lifecycle_tick().settled == ["20250908"]
    round_ = Round.objects.get(code="20250908")
    assert (round_.status, round_.result, round_.close_price) == ("SETTLED", "UP", Decimal("23100.500000"))
    assert CloseCheck.objects.filter(date=MON).count() == checks + 2


def test_oracle_status_shows_the_sources_and_the_evidence(vendors, locked_round, capsys):
    serve(vendors, stooq="23100.50", alphavantage="23100.50", twelvedata="23500.00")
    with time_machine.travel(at(2025, 9, 8, 16, 5), tick=False):
        call_command("settle_round", "--code", "20250908", "--result", "AUTO")
        capsys.readouterr()
        call_command("oracle_status")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "Now 2025-09-08 16:05:00 ET (America/New_York), market closed; "
        "stale after 300 s, down after 3 failures in a row."
    )
    assert "  source twelvedata     enabled  amber  up   success 50% of 2" in out[3]
    assert out[-4] == "Close NDX 2025-09-08: ACCEPTED 23100.500000 (1 check(s), latest 2025-09-08 16:05:00 ET)"
    assert (
        out[-1]
        == "  twelvedata     23500.000000     rejected deviation: 23500.000000 is more than 5 bps from 23100.500000"
    )
    with pytest.raises(CommandError, match=r"\[invalid_date\]"):
        call_command("oracle_status", "--date", "2025-13-01")
