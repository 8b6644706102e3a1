"""A local stub of the three preset vendors (Stooq CSV, Alpha Vantage JSON, Twelve Data JSON).

For the tests and for rehearsals (`simulate --faults`): no vendor is reachable from a test or a chaos
day. `StubVendors` is an http.server in a thread on a free port of `ports` (default 18100-18199). Each route (a path,
query ignored) answers with a function of the query: `stub.set(path, fn)`; helpers below build
answers shaped like each vendor's real format. `stub.base` replaces the vendors' hosts in the
presets (`point_presets_at`), so the presets' own paths and parsing are what the tests run.
"""

import json
import time
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from common.local_http import local_http_serve
from marketdata.models import PriceSource

PORTS = range(18100, 18200)
VENDOR_HOSTS = {
    "stooq": "https://stooq.com",
    "alphavantage": "https://www.alphavantage.co",
    "twelvedata": "https://api.twelvedata.com",
}
# (status, content type, body, delay in seconds)
Answer = tuple[int, str, bytes, float]


class StubVendors:
    def __init__(self, ports: range = PORTS):
        self.routes: dict[str, Callable[[dict, dict], Answer]] = {}
        self.requests: list[tuple[str, dict, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                headers = dict(self.headers.items())
                stub.requests.append((parts.path, query, headers))
                route = stub.routes.get(parts.path)
                status, ctype, body, delay = route(query, headers) if route else (404, "text/plain", b"nope", 0.0)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server, self.base, self.thread = local_http_serve(Handler, ports=ports, what="the stub vendors")

    def set(self, path: str, answer: Callable[[dict, dict], Answer] | Answer) -> None:
        self.routes[path] = answer if callable(answer) else (lambda query, headers: answer)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def point_presets_at(stub: StubVendors, *, enable: tuple[str, ...] = ("stooq", "alphavantage", "twelvedata")):
    """The presets, their vendor hosts replaced by the stub's address (stub path prefix = the preset name)."""
    for name, host in VENDOR_HOSTS.items():
        source = PriceSource.objects.get(name=name)
        source.config = {
            key: value.replace(host, f"{stub.base}/{name}") if isinstance(value, str) else value
            for key, value in source.config.items()
        }
        source.enabled = name in enable
        source.timeout_ms = 1000
        source.save()


# --- answers shaped like each vendor's -------------------------------------------------------

STOOQ_CLOSE = "/stooq/q/d/l/"
STOOQ_QUOTE = "/stooq/q/l/"
AV_QUERY = "/alphavantage/query"
TD_SERIES = "/twelvedata/time_series"
TD_QUOTE = "/twelvedata/quote"


def _json(document, status: int = 200, delay: float = 0.0) -> Answer:
    return status, "application/json", json.dumps(document).encode(), delay


def stooq_daily(closes: dict[date, str]) -> Callable[[dict, dict], Answer]:
    """Stooq's /q/d/l/ CSV for the days asked (d1..d2, YYYYMMDD)."""

    def answer(query, headers) -> Answer:
        lines = ["Date,Open,High,Low,Close,Volume"]
        for day, price in sorted(closes.items()):
            if query.get("d1", "0") <= day.strftime("%Y%m%d") <= query.get("d2", "99999999"):
                lines.append(f"{day.isoformat()},{price},{price},{price},{price},0")
        if len(lines) == 1:
            return 200, "text/csv", b"No data", 0.0  # what Stooq answers for an empty range
        return 200, "text/csv", ("\r\n".join(lines) + "\r\n").encode(), 0.0

    return answer


def alphavantage_daily(closes: dict[date, str], apikey: str = "av-test-key") -> Callable[[dict, dict], Answer]:
    """Alpha Vantage TIME_SERIES_DAILY (and GLOBAL_QUOTE from the latest day)."""

    def answer(query, headers) -> Answer:
        if query.get("apikey") != apikey:
            return _json({"Error Message": "the parameter apikey is invalid or missing."})
        if query.get("function") == "GLOBAL_QUOTE":
            day, price = max(closes.items())
            return _json({"Global Quote": {"01. symbol": query.get("symbol"), "05. price": price,
                                           "07. latest trading day": day.isoformat()}})  # fmt: skip
        series = {
            day.isoformat(): {"1. open": p, "2. high": p, "3. low": p, "4. close": p, "5. volume": "0"}
            for day, p in closes.items()
        }
        return _json({"Meta Data": {"2. Symbol": query.get("symbol")}, "Time Series (Daily)": series})

    return answer


def twelvedata_series(closes: dict[date, str], apikey: str = "td-test-key") -> Callable[[dict, dict], Answer]:
    """Twelve Data /time_series?date=… (the key in the Authorization header, as the preset sends it)."""

    def answer(query, headers) -> Answer:
        if headers.get("Authorization") != f"apikey {apikey}":
            return _json({"code": 401, "message": "apikey is invalid", "status": "error"}, status=401)
        day = date.fromisoformat(query["date"])
        if day not in closes:
            return _json({"code": 400, "message": "No data is available on the specified dates.", "status": "error"})
        p = closes[day]
        return _json({"meta": {"symbol": query.get("symbol"), "interval": "1day"},
                      "values": [{"datetime": day.isoformat(), "open": p, "high": p, "low": p, "close": p}],
                      "status": "ok"})  # fmt: skip

    return answer


def twelvedata_quote(price: str, timestamp: int) -> Callable[[dict, dict], Answer]:
    return lambda query, headers: _json({"symbol": query.get("symbol"), "close": price, "timestamp": timestamp})
