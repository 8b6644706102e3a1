"""archive_ticks: old ticks go in batches, each day's OHLC stays in price_tick_daily for the 1d candles."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from marketdata.models import PriceTick, TickDaily
from marketdata.selectors import candles_get
from marketdata.services import ticks_archive

pytestmark = [pytest.mark.django_db, pytest.mark.money]  # the bucket SQL on both databases
NOW = datetime(2025, 10, 15, 12, 0, tzinfo=UTC)


def make_ticks(day: date, n: int, symbol: str = "NDX") -> None:
    """n ticks from 14:00 UTC on `day`, a minute apart, price 100 + i."""
    start = datetime(day.year, day.month, day.day, 14, 0, tzinfo=UTC)
    PriceTick.objects.bulk_create(
        PriceTick(symbol=symbol, price=Decimal(100 + i), source="s", ts=start + timedelta(minutes=i), received_at=start)
        for i in range(n)
    )


def test_batches_keep_each_day_exactly_once_and_the_1d_candles_unchanged(capsys):
    make_ticks(date(2025, 9, 8), 7)
    make_ticks(date(2025, 9, 9), 5)
    make_ticks(date(2025, 10, 14), 3)  # young: stays
    before = candles_get(symbol="NDX", interval="1d", limit=60)
    assert [c.ticks for c in before] == [7, 5, 3]
    with time_machine.travel(NOW, tick=False):
        call_command("archive_ticks", "--older-than", "30d", "--batch-size", "4")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "  NDX: archived 4 of 12 ticks (up to 2025-09-08 14:03:00 UTC)",
        "  NDX: archived 8 of 12 ticks (up to 2025-09-09 14:00:00 UTC)",
        "  NDX: archived 12 of 12 ticks (up to 2025-09-09 14:04:00 UTC)",
        "Archived 12 tick(s) before 2025-09-15 00:00 (UTC-05:00); 2 new daily summary row(s).",
    ]
    assert PriceTick.objects.count() == 3
    daily = list(TickDaily.objects.order_by("date").values_list("date", "open", "high", "low", "close", "tick_count"))
    assert daily == [
        (date(2025, 9, 8), Decimal("100"), Decimal("106"), Decimal("100"), Decimal("106"), 7),
        (date(2025, 9, 9), Decimal("100"), Decimal("104"), Decimal("100"), Decimal("104"), 5),
    ]
    assert candles_get(symbol="NDX", interval="1d", limit=60) == before  # the chart does not change
    assert [c.ticks for c in candles_get(symbol="NDX", interval="1d", limit=36)] == [
        5,
        3,
    ]  # 36 days back from Oct 14: not Sep 8
    event = AuditEvent.objects.get(action="marketdata.ticks_archive")
    assert event.after["deleted"] == 12


def test_a_second_run_finds_nothing():
    make_ticks(date(2025, 9, 8), 3)
    with time_machine.travel(NOW, tick=False):
        first = ticks_archive(older_than=timedelta(days=30))
        second = ticks_archive(older_than=timedelta(days=30))
    assert (first.deleted, second.deleted, TickDaily.objects.get().tick_count) == (3, 0, 3)


@pytest.mark.parametrize("value", ["30", "0d", "-3d", "30days", "99999d", " "])
def test_bad_ages_are_refused(value):
    with pytest.raises(CommandError, match=r"\[invalid_age\]"):
        call_command("archive_ticks", f"--older-than={value}")


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_outside_any_transaction_as_the_beat_does(capsys):
    make_ticks(date(2025, 9, 8), 2)
    with time_machine.travel(NOW, tick=False):
        call_command("archive_ticks", "--older-than", "30d")
    assert capsys.readouterr().out.splitlines()[-1].startswith("Archived 2 tick(s)")
    assert AuditEvent.objects.filter(action="marketdata.ticks_archive").count() == 1
