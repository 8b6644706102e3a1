"""Ingestion of live ticks, the feed's freshness and health, its gauges, alert and breaker rules."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from marketdata.models import PriceSource, PriceTick
from marketdata.selectors import feed_status
from marketdata.services import prices_ingest
from marketdata.stub_vendors import AV_QUERY, STOOQ_QUOTE, TD_QUOTE, twelvedata_quote
from ops.dashboard import metrics_text
from ops.rules import alert_price_feed_stale, alert_price_source_down, breaker_no_price_source

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
TEN = datetime(2025, 9, 8, 10, 0, tzinfo=NY)  # a Monday, market open


def stooq_quote(price: str, hhmmss: str):
    body = f"Symbol,Date,Time,Close\r\n^NDX,2025-09-08,{hhmmss},{price}\r\n".encode()
    return (200, "text/csv", body, 0.0)


def test_one_hanging_source_never_stops_the_others(vendors):
    vendors.set(STOOQ_QUOTE, stooq_quote("23100.25", "09:59:30"))
    vendors.set(TD_QUOTE, twelvedata_quote("23100.50", int(TEN.timestamp()) - 10))
    vendors.set(AV_QUERY, (200, "application/json", b"{}", 5.0))  # hangs past its 1 s timeout
    with time_machine.travel(TEN, tick=False):
        report = prices_ingest()
    assert report.ticks == 2
    assert report.outcomes == {
        "alphavantage NDX": "rejected timeout: no answer within 1 s",
        "stooq NDX": "tick 23100.250000",
        "twelvedata NDX": "tick 23100.500000",
    }
    ticks = PriceTick.objects.order_by("source").values_list("source", "price", "ts", "received_at")
    assert list(ticks) == [
        ("stooq", Decimal("23100.250000"), datetime(2025, 9, 8, 9, 59, 30, tzinfo=NY), TEN),
        ("twelvedata", Decimal("23100.500000"), TEN - timedelta(seconds=10), TEN),
    ]
    hung = PriceSource.objects.get(name="alphavantage")
    assert (hung.consecutive_failures, hung.recent, hung.rejected) == (1, "0", {"timeout": 1})


def test_an_unchanged_quote_is_no_new_tick_and_no_failure_and_a_failing_source_backs_off(vendors):
    vendors.set(STOOQ_QUOTE, stooq_quote("23100.25", "09:59:30"))
    vendors.set(TD_QUOTE, twelvedata_quote("23100.50", int(TEN.timestamp())))
    vendors.set(AV_QUERY, (500, "text/plain", b"oops", 0.0))
    with time_machine.travel(TEN, tick=False) as clock:
        first = prices_ingest()
        clock.move_to(TEN + timedelta(seconds=60))
        second = prices_ingest()
        clock.move_to(TEN + timedelta(seconds=90))  # the 2nd failure's backoff is 120 s
        third = prices_ingest()
    assert (first.ticks, second.ticks, third.ticks) == (2, 0, 0)
    assert second.outcomes["stooq NDX"] == "unchanged 23100.250000"
    assert second.outcomes["alphavantage NDX"] == "rejected http_error: HTTP 500"
    assert third.outcomes["alphavantage NDX"] == "backoff"
    assert PriceSource.objects.get(name="stooq").recent == "111"
    assert PriceSource.objects.get(name="alphavantage").recent == "00"
    assert PriceTick.objects.count() == 2


def test_ingest_prices_command_prints_each_source(vendors, capsys):
    vendors.set(STOOQ_QUOTE, (200, "text/html", b"<html>captcha</html>", 0.0))
    vendors.set(TD_QUOTE, twelvedata_quote("0", int(TEN.timestamp())))
    vendors.set(AV_QUERY, (200, "application/json", b'{"Global Quote": {"05. price": "23100.1", '
                                                    b'"07. latest trading day": "2025-09-08"}}', 0.0))  # fmt: skip
    with time_machine.travel(TEN, tick=False):
        call_command("ingest_prices")
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "  alphavantage NDX: tick 23100.100000",  # a date-only quote of today is stamped when received
        "  stooq NDX: rejected html: answer is an HTML page, not data",
        "  twelvedata NDX: rejected non_positive: price 0 is not above zero",
        "1 new tick(s).",
    ]


def _health(name: str, **fields) -> None:
    PriceSource.objects.filter(name=name).update(**fields)


def test_feed_status_gauges_rules_and_breaker_share_one_threshold(vendors, settings):
    settings.PRICE_TICK_STALE_SECONDS = 180
    PriceTick.objects.create(symbol="NDX", price=Decimal("1"), source="stooq", ts=TEN - timedelta(seconds=200),
                             received_at=TEN)  # fmt: skip
    _health("stooq", recent="1" * 18 + "00", consecutive_failures=2, last_success_at=TEN, last_error="timeout: x")
    _health("twelvedata", recent="1" * 20, last_success_at=TEN, rejected={"deviation": 2, "html": 1})
    _health("alphavantage", recent="000", consecutive_failures=3, last_error="http_error: HTTP 500")
    feed = feed_status(now=TEN)
    assert [(s.symbol, s.age_seconds, s.target_seconds, s.stale) for s in feed.symbols] == [("NDX", 200.0, 180, True)]
    assert [(s.name, s.up, s.colour, s.success_rate) for s in feed.sources] == [
        ("alphavantage", False, "red", 0.0), ("stooq", True, "amber", 0.9), ("twelvedata", True, "green", 1.0),
    ]  # fmt: skip
    assert [f.key for f in alert_price_feed_stale(TEN)] == ["price_feed_stale:NDX"]
    assert [(f.key, f.summary) for f in alert_price_source_down(TEN)] == [
        ("price_source_down:alphavantage",
         "Price source alphavantage is down: 3 failure(s) in a row, last error: http_error: HTTP 500."),
    ]  # fmt: skip
    assert breaker_no_price_source(TEN) is None  # two are up
    with time_machine.travel(TEN, tick=False):
        text = metrics_text().decode()
    assert 'betting_price_tick_age_seconds{symbol="NDX"} 200.0' in text
    assert 'betting_price_source_up{source="alphavantage"} 0.0' in text
    assert 'betting_price_source_up{source="twelvedata"} 1.0' in text
    assert 'betting_price_source_success_age_seconds{source="stooq"} 0.0' in text
    assert 'betting_price_source_success_age_seconds{source="alphavantage"} -1.0' in text
    assert 'betting_price_quotes_rejected_total{reason="deviation"} 2.0' in text
    assert 'betting_price_quotes_rejected_total{reason="timeout"} 0.0' in text

    # none healthy in market hours trips the breaker; after the close it does not, nor is the feed stale
    _health("stooq", consecutive_failures=3)
    _health("twelvedata", consecutive_failures=5)
    trip = breaker_no_price_source(TEN)
    assert (trip.rule, trip.reason) == (
        "no_price_source",
        "none of the 3 enabled price source(s) is healthy in market hours",
    )
    evening = datetime(2025, 9, 8, 16, 30, tzinfo=NY)
    assert (breaker_no_price_source(evening), alert_price_feed_stale(evening)) == (None, [])


def test_without_a_feed_configured_nothing_alerts_or_trips():
    PriceSource.objects.update(enabled=False)
    assert (alert_price_feed_stale(TEN), alert_price_source_down(TEN), breaker_no_price_source(TEN)) == ([], [], None)
