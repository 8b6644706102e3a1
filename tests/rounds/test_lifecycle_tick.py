"""The beat's lifecycle tick, with the clock moved by time-machine (America/New_York times)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audit.models import AuditEvent
from ledger.selectors import user_balance_u
from rounds.models import Round
from rounds.services import round_lifecycle_tick, round_settle
from rounds.tasks import lifecycle_tick
from tests.rounds.conftest import place_bet, set_close

pytestmark = [pytest.mark.django_db, pytest.mark.money]
NY = ZoneInfo("America/New_York")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def test_tick_opens_todays_round_before_the_open_and_is_idempotent():
    with time_machine.travel(at(2025, 9, 8, 8, 0), tick=False):
        report = round_lifecycle_tick()
        again = round_lifecycle_tick()
    assert report.opened == ["20250908"]
    assert again.opened == []
    assert list(Round.objects.values_list("code", "status")) == [("20250908", "OPEN")]


def test_tick_opens_nothing_on_a_weekend_or_holiday():
    with time_machine.travel(at(2025, 9, 6, 8, 0), tick=False):
        assert round_lifecycle_tick().opened == []
    with time_machine.travel(at(2025, 12, 25, 8, 0), tick=False):
        assert round_lifecycle_tick().opened == []
    assert not Round.objects.exists()


def test_full_day_locks_then_settles_auto(users):
    a, b = users(2)
    with time_machine.travel(at(2025, 9, 8, 8, 0), tick=False) as clock:
        round_lifecycle_tick()
        round_ = Round.objects.get(code="20250908")
        place_bet(round_, a, "UP", 1_000_000)
        place_bet(round_, b, "DOWN", 1_000_000)
        clock.move_to(at(2025, 9, 8, 15, 59, 58))
        assert round_lifecycle_tick().locked == []
        clock.move_to(at(2025, 9, 8, 15, 59, 59))
        assert round_lifecycle_tick().locked == ["20250908"]
        set_close("NDX", date(2025, 9, 5), "100")
        set_close("NDX", date(2025, 9, 8), "101")
        clock.move_to(at(2025, 9, 8, 16, 4, 59))
        assert round_lifecycle_tick().settled == []
        clock.move_to(at(2025, 9, 8, 16, 5))
        assert lifecycle_tick() == {
            "opened": [],
            "locked": [],
            "settled": ["20250908"],
            "waiting_for_close": [],
            "overdue": [],
            "still_overdue": [],
            "errors": [],
        }
    round_.refresh_from_db()
    assert (round_.status, round_.result) == ("SETTLED", "UP")
    assert user_balance_u(user_id=a.pk) == 10_000_000_000 + 990_000
    sources = set(AuditEvent.objects.filter(object_id="20250908").values_list("action", "source"))
    assert sources == {("round.open", "beat"), ("round.lock", "beat"), ("round.settle", "beat")}


def test_catch_up_after_downtime_locks_and_settles_in_one_tick(users):
    a, b = users(2)
    with time_machine.travel(at(2025, 9, 8, 9, 0), tick=False) as clock:
        round_lifecycle_tick()
        round_ = Round.objects.get(code="20250908")
        place_bet(round_, a, "UP", 2_000_000)
        place_bet(round_, b, "DOWN", 1_000_000)
        set_close("NDX", date(2025, 9, 5), "100")
        set_close("NDX", date(2025, 9, 8), "99")
        # the worker was down all afternoon
        clock.move_to(at(2025, 9, 8, 18, 30))
        report = round_lifecycle_tick()
    assert (report.locked, report.settled) == (["20250908"], ["20250908"])
    round_.refresh_from_db()
    assert (round_.status, round_.result) == ("SETTLED", "DOWN")


def test_no_close_retries_until_grace_then_marks_overdue_and_never_voids(users, settings):
    settings.ROUND_SETTLE_GRACE_SECONDS = 300
    a, b = users(2)
    with time_machine.travel(at(2025, 9, 8, 9, 0), tick=False) as clock:
        round_lifecycle_tick()
        round_ = Round.objects.get(code="20250908")
        place_bet(round_, a, "UP", 1_000_000)
        place_bet(round_, b, "DOWN", 1_000_000)
        clock.move_to(at(2025, 9, 8, 16, 5))
        assert round_lifecycle_tick().waiting_for_close == ["20250908"]
        clock.move_to(at(2025, 9, 8, 16, 9, 59))
        assert round_lifecycle_tick().waiting_for_close == ["20250908"]
        clock.move_to(at(2025, 9, 8, 16, 10))
        assert round_lifecycle_tick().overdue == ["20250908"]
        clock.move_to(at(2025, 9, 8, 16, 20))
        later = round_lifecycle_tick()
    assert (later.settled, later.overdue, later.waiting_for_close) == ([], [], [])
    round_.refresh_from_db()
    assert round_.status == "LOCKED"
    assert round_.overdue_since == at(2025, 9, 8, 16, 10)
    assert AuditEvent.objects.filter(action="round.overdue").count() == 1
    # the operator settles it by hand with a reason
    round_settle(code="20250908", result="VOID", reason="oracle down, no verified close", source="cli")
    assert user_balance_u(user_id=a.pk) == 10_000_000_000


def test_early_close_day_locks_at_12_59_59():
    with time_machine.travel(at(2025, 11, 28, 8, 0), tick=False) as clock:
        round_lifecycle_tick()
        clock.move_to(at(2025, 11, 28, 12, 59, 58))
        assert round_lifecycle_tick().locked == []
        clock.move_to(at(2025, 11, 28, 12, 59, 59))
        assert round_lifecycle_tick().locked == ["20251128"]


def test_tick_after_lock_time_does_not_open_a_dead_round():
    with time_machine.travel(at(2025, 9, 8, 17, 0), tick=False):
        assert round_lifecycle_tick().opened == []
    assert not Round.objects.exists()
