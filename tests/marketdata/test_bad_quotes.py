"""Bad quotes are evidence, not crashes: each way a source can be wrong is a rejection with its reason."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from marketdata.models import OfficialClose, PriceSource
from marketdata.oracle import source_specs
from marketdata.quorum import quorum_decide
from marketdata.selectors import market_close_at
from marketdata.services import official_close_resolve, price_source_test
from marketdata.sources import Quote, SourceSpec, quotes_fetch_all
from marketdata.stub_vendors import (
    AV_QUERY,
    STOOQ_CLOSE,
    TD_SERIES,
    alphavantage_daily,
    point_presets_at,
    stooq_daily,
)

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
MON = date(2025, 9, 8)
AFTER_CLOSE = datetime(2025, 9, 8, 16, 5, tzinfo=NY)


def _td(body: bytes, status: int = 200, ctype: str = "application/json", delay: float = 0.0):
    return (status, ctype, body, delay)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_td(b"<html><head><title>502</title></head><body>Bad gateway</body></html>", ctype="text/html"), "html"),
        (_td(b"\x00\xff not json at all"), "garbage"),
        (_td(b'{"values": [{"datetime": "2025-09-08", "close": "abc"}]}'), "garbage"),
        (_td(b'{"values": [{"datetime": "2025-09-08", "close": "NaN"}]}'), "garbage"),
        (_td(b'{"values": [{"datetime": "2025-09-08", "close": "0"}]}'), "non_positive"),
        (_td(b'{"values": [{"datetime": "2025-09-08", "close": "-23100.5"}]}'), "non_positive"),
        (_td(b'{"values": []}'), "missing"),
        (_td(b'{"code": 429, "status": "error"}', status=429), "http_error"),
        (_td(b'{"values": [{"datetime": "2025-09-08 17:00:00", "close": "23100.5"}]}'), "future_timestamp"),
        (_td(b'{"values": [{"datetime": "2025-09-08 15:30:00", "close": "23100.5"}]}'), "stale"),
        (_td(b'{"values": [{"datetime": "2025-09-05", "close": "23100.5"}]}'), "stale"),
        (_td(b'{"values": [{"datetime": "2025-09-08", "close": "23100.5"}]}', delay=3.0), "timeout"),
    ],
)
def test_each_bad_answer_is_rejected_with_its_reason(vendors, answer, reason):
    PriceSource.objects.filter(name__in=["stooq", "alphavantage"]).update(enabled=False)
    vendors.set(TD_SERIES, answer)
    with time_machine.travel(AFTER_CLOSE, tick=False):
        quotes = quotes_fetch_all(source_specs(), symbol="NDX", day=MON)
        decision = quorum_decide(
            quotes, close_at=market_close_at(day=MON), now=AFTER_CLOSE, quorum=1, max_deviation_bps=5,
            allowance=timedelta(hours=6),
        )  # fmt: skip
    assert decision.price is None
    assert [(v.quote.source, v.accepted, v.reason) for v in decision.verdicts] == [("twelvedata", False, reason)]


def test_a_hanging_source_does_not_hold_up_the_others(vendors):
    vendors.set(STOOQ_CLOSE, stooq_daily({MON: "23100.50"}))
    vendors.set(AV_QUERY, alphavantage_daily({MON: "23100.50"}))
    vendors.set(TD_SERIES, _td(b"{}", delay=5.0))  # hangs far past its 1 s timeout
    with time_machine.travel(AFTER_CLOSE, tick=False):
        resolution = official_close_resolve(symbol="NDX", day=MON)
    assert (resolution.price, resolution.source) == (Decimal("23100.500000"), "quorum")
    assert OfficialClose.objects.get(date=MON).source == "quorum"
    hung = PriceSource.objects.get(name="twelvedata")
    assert (hung.rejected, hung.last_error) == ({"timeout": 1}, "timeout: no answer within 1 s")


def test_a_missing_api_key_is_a_config_rejection(vendors, monkeypatch):
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY")
    quote = quotes_fetch_all(source_specs(), symbol="NDX", day=MON)
    assert [(q.source, q.reason, q.detail) for q in quote if q.source == "alphavantage"] == [
        ("alphavantage", "config", "no API key: set the environment variable ALPHAVANTAGE_API_KEY")
    ]
    assert [r[0] for r in vendors.requests].count(AV_QUERY) == 0


def _quote(source: str, price: str, ts: datetime, *, date_only: bool = False) -> Quote:
    return Quote(source=source, symbol="NDX", price=Decimal(price), ts=ts, date_only=date_only)


def test_early_close_freshness_counts_from_13_00():
    day = date(2025, 11, 28)  # the day after Thanksgiving: the market closes at 13:00
    close_at = market_close_at(day=day)
    assert close_at == datetime(2025, 11, 28, 13, 0, tzinfo=NY)
    decision = quorum_decide(
        [
            _quote("a", "20900.10", datetime(2025, 11, 28, 13, 0, tzinfo=NY)),
            _quote("b", "20900.10", datetime(2025, 11, 28, 18, 0, tzinfo=UTC)),  # 13:00 ET too
            _quote("c", "20900.10", datetime(2025, 11, 28, 12, 59, 59, tzinfo=NY)),  # a second before the bell
            _quote("d", "20900.10", datetime(2025, 11, 28, 0, 0, tzinfo=NY), date_only=True),
        ],
        close_at=close_at,
        now=datetime(2025, 11, 28, 13, 5, tzinfo=NY),
        quorum=2,
        max_deviation_bps=5,
        allowance=timedelta(hours=6),
    )
    assert decision.price == Decimal("20900.10")
    assert [(v.quote.source, v.accepted, v.reason) for v in decision.verdicts] == [
        ("a", True, ""), ("b", True, ""), ("c", False, "stale"), ("d", True, ""),
    ]  # fmt: skip


def test_deviation_is_measured_in_basis_points_and_the_price_is_the_weighted_median():
    ts = datetime(2025, 9, 8, 16, 0, tzinfo=NY)
    quotes = [
        _quote("a", "10000.00", ts),
        _quote("b", "10005.00", ts),  # 5 bps above a: agrees
        _quote("c", "10005.01", ts),  # 5.01 bps above a, but within 5 bps of b
        _quote("d", "10011.00", ts),  # 6 bps above b: out
    ]
    decision = quorum_decide(quotes, close_at=ts, now=ts, quorum=3, max_deviation_bps=5, allowance=timedelta(hours=6))
    assert decision.price == Decimal("10005.00")
    assert [(v.quote.source, v.reason) for v in decision.verdicts] == [
        ("a", ""), ("b", ""), ("c", ""), ("d", "deviation"),
    ]  # fmt: skip


def test_set_close_refuses_a_close_that_has_not_happened_yet():
    with time_machine.travel(datetime(2025, 9, 8, 15, 59, tzinfo=NY), tick=False):
        with pytest.raises(CommandError) as today:
            call_command("set_close", "--symbol", "NDX", "--date", "2025-09-08", "--price", "23100.5")
        with pytest.raises(CommandError) as tomorrow:
            call_command("set_close", "--symbol", "NDX", "--date", "2025-09-09", "--price", "23100.5")
        call_command("set_close", "--symbol", "NDX", "--date", "2025-09-05", "--price", "23000")
    assert "[close_not_yet]" in str(today.value)
    assert "The close of 2025-09-08 has not happened yet at 16:00 ET; it is 2025-09-08 15:59 ET now." in str(
        today.value
    )
    assert "[close_not_yet]" in str(tomorrow.value)
    assert list(OfficialClose.objects.values_list("date", flat=True)) == [date(2025, 9, 5)]


def test_test_now_shows_the_parsed_quote_of_a_disabled_source(vendors):
    PriceSource.objects.filter(name="stooq").update(enabled=False)
    vendors.set(STOOQ_CLOSE, stooq_daily({MON: "23100.50"}))
    quote = price_source_test(name="stooq", symbol="ndx", day=MON)
    assert (quote.price, quote.ts, quote.reason) == (Decimal("23100.500000"), datetime(2025, 9, 8, tzinfo=NY), "")
    assert vendors.requests[-1][1] == {"s": "^ndx", "i": "d", "d1": "20250908", "d2": "20250908"}


@pytest.mark.django_db(transaction=True)
def test_test_now_outside_a_transaction_is_audited(stub):
    point_presets_at(stub)
    stub.set(STOOQ_CLOSE, stooq_daily({MON: "23100.50"}))
    quote = price_source_test(name="stooq", symbol="NDX", day=MON)
    assert (quote.price, quote.reason) == (Decimal("23100.500000"), "")
    assert AuditEvent.objects.filter(action="marketdata.source_test", object_id="stooq").count() == 1


def test_a_csv_file_source_inside_the_price_file_folder_only(tmp_path, settings):
    settings.PRICE_FILE_DIR = str(tmp_path)
    path = tmp_path / "closes.csv"
    path.write_text("Date,Close\n20250905,23000.00\n20250908,23100.5\n")
    spec = SourceSpec(name="file", kind="csv", timeout_ms=1000, config={"close_url": f"file://{path}"})
    quote = quotes_fetch_all([spec], symbol="NDX", day=MON)[0]
    assert (quote.price, quote.ts, quote.date_only) == (Decimal("23100.500000"), datetime(2025, 9, 8, tzinfo=NY), True)
    missing = SourceSpec(name="file", kind="csv", timeout_ms=1000, config={"close_url": f"file://{tmp_path}/nope"})
    assert quotes_fetch_all([missing], symbol="NDX", day=MON)[0].reason == "unreachable"
    elsewhere = SourceSpec(name="file", kind="csv", timeout_ms=1000, config={"close_url": "file:///etc/passwd"})
    refused = quotes_fetch_all([elsewhere], symbol="NDX", day=MON)[0]
    assert (refused.reason, refused.detail) == ("config", f"a file source must be in PRICE_FILE_DIR ({tmp_path})")
    sneaky = SourceSpec(name="file", kind="csv", timeout_ms=1000, config={"close_url": f"file://{tmp_path}/../x"})
    assert quotes_fetch_all([sneaky], symbol="NDX", day=MON)[0].reason == "config"
