"""GET /api/v1/candles/<symbol>: OHLC aggregated in SQL, on SQLite and on PostgreSQL (marked money for both passes)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from marketdata.models import PriceSource, PriceTick, TickDaily
from marketdata.services import prices_ingest
from marketdata.stub_vendors import STOOQ_QUOTE, TD_QUOTE, twelvedata_quote

pytestmark = [pytest.mark.django_db, pytest.mark.money]
NY = ZoneInfo("America/New_York")
START = datetime(2025, 9, 8, 9, 0, tzinfo=UTC)  # on the hour


def ticks(n: int, *, every: timedelta, symbol: str = "IXIC", start: datetime = START) -> None:
    """n ticks, price 100.000001 * (i + 1): each candle's open/high/low/close are known exactly."""
    PriceTick.objects.bulk_create(
        PriceTick(
            symbol=symbol,
            price=Decimal("100.000001") * (i + 1),
            source="stooq",
            ts=start + i * every,
            received_at=start + i * every,
        )  # fmt: skip
        for i in range(n)
    )


@pytest.fixture(autouse=True)
def _symbols(settings):
    settings.PRICE_SYMBOLS = ["NDX", "IXIC"]


def test_24_hourly_candles_newest_last(client):
    ticks(25 * 6, every=timedelta(minutes=10))  # 25 hours, six ticks an hour
    response = client.get("/api/v1/candles/IXIC?interval=1h&limit=24")
    assert response.status_code == 200
    body = response.json()
    assert (body["symbol"], body["interval"], len(body["candles"])) == ("IXIC", "1h", 24)
    first, last = body["candles"][0], body["candles"][-1]
    # the 25 hours are 09:00 .. 09:50 the next day; the last 24 start at 10:00
    assert first == {
        "start": "2025-09-08T10:00:00Z", "end": "2025-09-08T11:00:00Z",
        "open": "700.000007", "high": "1200.000012", "low": "700.000007", "close": "1200.000012", "ticks": 6,
    }  # fmt: skip
    assert (last["start"], last["close"], last["ticks"]) == ("2025-09-09T09:00:00Z", "15000.000150", 6)
    assert [c["start"] for c in body["candles"]] == sorted(c["start"] for c in body["candles"])


def test_minute_five_minute_and_daily_candles_and_ties(client):
    ticks(10, every=timedelta(seconds=30))  # 09:00:00 .. 09:04:30 UTC
    PriceTick.objects.create(
        symbol="IXIC", price=Decimal("1"), source="b", ts=START + timedelta(seconds=270), received_at=START
    )  # fmt: skip  (same second as the last: the later row closes)
    PriceTick.objects.create(
        symbol="IXIC",
        price=Decimal("2"),
        source="c",
        received_at=START,
        ts=START + timedelta(seconds=179, microseconds=900_000),
    )  # fmt: skip  (09:02:59.9)
    one = client.get("/api/v1/candles/IXIC?interval=1m&limit=3").json()["candles"]
    assert [(c["start"][11:19], c["open"], c["close"], c["ticks"]) for c in one] == [
        ("09:02:00", "500.000005", "2.000000", 3),  # 09:02:59.9 is still 09:02
        ("09:03:00", "700.000007", "800.000008", 2),
        ("09:04:00", "900.000009", "1.000000", 3),
    ]
    five = client.get("/api/v1/candles/IXIC?interval=5m").json()["candles"]
    assert [(c["open"], c["high"], c["low"], c["close"], c["ticks"]) for c in five] == [
        ("100.000001", "1000.000010", "1.000000", "1.000000", 12)
    ]
    friday = START - timedelta(days=3)
    TickDaily.objects.create(
        symbol="IXIC", date=friday.date(), open=Decimal("90"), high=Decimal("95"), low=Decimal("89"),
        close=Decimal("94"), tick_count=390, first_ts=friday, last_ts=friday + timedelta(hours=6),
    )  # fmt: skip
    daily = client.get("/api/v1/candles/IXIC?interval=1d&limit=5").json()["candles"]
    assert [(c["start"], c["open"], c["close"], c["ticks"]) for c in daily] == [
        ("2025-09-05T05:00:00Z", "90.000000", "94.000000", 390),  # from the daily summary
        ("2025-09-08T05:00:00Z", "100.000001", "1.000000", 12),  # midnight in fixed UTC-05:00
    ]


def test_candles_from_ingested_ticks(vendors, client):
    for minute in range(3):
        at = datetime(2025, 9, 8, 10, minute, 5, tzinfo=NY)
        price = f"23100.{minute}5"
        vendors.set(STOOQ_QUOTE, (200, "text/csv", f"Symbol,Date,Time,Close\r\n^NDX,2025-09-08,"
                                  f"{at:%H:%M:%S},{price}\r\n".encode(), 0.0))  # fmt: skip
        with time_machine.travel(at + timedelta(seconds=1), tick=False):
            prices_ingest(symbols=["NDX"])
    candles = client.get("/api/v1/candles/NDX?interval=1m&limit=10").json()["candles"]
    stooq = [(c["start"], c["close"]) for c in candles]
    assert stooq == [
        ("2025-09-08T14:00:00Z", "23100.050000"),
        ("2025-09-08T14:01:00Z", "23100.150000"),
        ("2025-09-08T14:02:00Z", "23100.250000"),
    ]


def test_a_known_symbol_without_ticks_has_no_candles(client):
    assert client.get("/api/v1/candles/NDX").json() == {"symbol": "NDX", "interval": "1h", "candles": []}


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/v1/candles/NOPE", 404, "unknown_symbol"),
        ("/api/v1/candles/" + "X" * 40, 404, "unknown_symbol"),
        ("/api/v1/candles/IXIC?interval=2h", 400, "invalid_interval"),
        ("/api/v1/candles/IXIC?interval=", 400, "invalid_interval"),
        ("/api/v1/candles/IXIC?limit=0", 400, "invalid_parameter"),
        ("/api/v1/candles/IXIC?limit=1001", 400, "invalid_parameter"),
        ("/api/v1/candles/IXIC?limit=-5", 400, "invalid_parameter"),
        ("/api/v1/candles/IXIC?limit=ten", 400, "invalid_parameter"),
        ("/api/v1/candles/IXIC?limit=99999999999999999999", 400, "invalid_parameter"),
    ],
)
def test_bad_requests_are_refused_with_a_code(client, url, status, code):
    response = client.get(url)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_curl_ixic_1h_24_returns_24_candles_from_ingested_ticks(vendors, client):
    PriceSource.objects.exclude(name="twelvedata").update(enabled=False)
    for step in range(2 * 25):  # every 30 minutes for 25 hours, from 09:00 UTC
        at = START + timedelta(minutes=30 * step)
        vendors.set(TD_QUOTE, twelvedata_quote(f"{18000 + step}.25", int(at.timestamp()) - 5))
        with time_machine.travel(at, tick=False):
            assert prices_ingest(symbols=["IXIC"]).ticks == 1
    candles = client.get("/api/v1/candles/IXIC?interval=1h&limit=24").json()["candles"]
    assert len(candles) == 24
    assert [(c["open"], c["close"], c["ticks"]) for c in candles[:2]] == [
        ("18003.250000", "18004.250000", 2),  # 10:29:55 and 10:59:55 (each tick stamped 5 s before its poll)
        ("18005.250000", "18006.250000", 2),
    ]
    assert candles[-1]["start"] == "2025-09-09T09:00:00Z"
