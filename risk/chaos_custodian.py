"""The chaos days' custodian: a payout service on a local port, outside our database.

It speaks the protocol `withdrawals.adapters.HttpPayoutAdapter` speaks to a real custodian
(POST /payouts with a Bearer token and the reference as Idempotency-Key; GET /payouts/<reference>),
so the payouts go through the same adapter, settings and code a production custodian would
(PAYOUT_ADAPTER="http", PAYOUT_HTTP_URL, PAYOUT_HTTP_TOKEN, PAYOUT_HTTP_TIMEOUT_SECONDS): in this
process and in the Celery workers the chaos starts. Its ledger is its own, in this process's memory:
a `restore` of our database does not rewind what it paid, so the checker reads what it says.

Its plan tells it what to do with a reference: "fail" (refuse it: 422), "timeout" (never received:
no answer until the client gave up), "late" (received, no answer in time, paid at `lands_at`; asked
again meanwhile it answers 409, in progress). Times are this process's clock (the chaos days' travelled one).
"""

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from django.utils import timezone

from common.local_http import local_http_serve

TOKEN = "chaos-custodian-token"
PENDING, COMPLETED, FAILED = "pending", "completed", "failed"


@dataclass
class Payout:
    reference: str
    destination: str
    amount_u: int
    state: str
    tx_hash: str = ""
    reason: str = ""

    def answer(self) -> dict[str, Any]:
        return {"status": self.state, "tx_hash": self.tx_hash, "reason": self.reason, "amount_u": self.amount_u}


def _tx_hash(reference: str) -> str:
    return "0x" + hashlib.sha256(f"custodian:{reference}".encode()).hexdigest()


class CustodianStub:
    """The custodian on the first free port of `ports`; `timeout` is the client's (the hold outlasts it)."""

    def __init__(self, *, ports: range, timeout: float) -> None:
        self.payouts: dict[str, Payout] = {}
        self.behaviour: dict[str, str] = {}
        self.lands_at: dict[str, datetime] = {}
        self.sends: Counter = Counter()
        self.timeout = timeout
        self.hold_seconds = timeout + 0.5
        self.lock = threading.Lock()
        self.closing = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                    return True
                self._answer(401, {"detail": "bad token"})
                return False

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    reference, destination, amount_u = body["reference"], body["destination"], body["amount_u"]
                except (ValueError, KeyError, TypeError):
                    return self._answer(400, {"detail": "reference, destination and amount_u are required"})
                if self.path != "/payouts":
                    return self._answer(404, {"detail": "no such path"})
                if not self._authorized():
                    return None
                if self.headers.get("Idempotency-Key") != reference:
                    return self._answer(400, {"detail": "Idempotency-Key must be the reference"})
                status, answer = stub.send(reference=reference, destination=destination, amount_u=amount_u)
                if status is None:  # no answer in time: the client gives up first
                    stub.closing.wait(stub.hold_seconds)
                    return None
                return self._answer(status, answer)

            def do_GET(self) -> None:  # noqa: N802
                if not self.path.startswith("/payouts/"):
                    return self._answer(404, {"detail": "no such path"})
                if not self._authorized():
                    return None
                payout = stub.status(self.path.rsplit("/", 1)[-1])
                if payout is None:
                    return self._answer(404, {"detail": "unknown reference"})
                return self._answer(200, payout)

        self.server, self.url, self.thread = local_http_serve(
            Handler, ports=ports, what="the custodian", poll_interval=0.05
        )

    def settings(self) -> dict[str, Any]:
        """What points our payout adapter (here, and in the workers' environment) at this custodian."""
        return {
            "PAYOUT_ADAPTER": "http",
            "PAYOUT_HTTP_URL": self.url,
            "PAYOUT_HTTP_TOKEN": TOKEN,
            "PAYOUT_HTTP_TIMEOUT_SECONDS": self.timeout,
        }

    def stop(self) -> None:
        """Ends the server; what it paid stays readable."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    # --- its own ledger ------------------------------------------------------------------------

    def _land(self, reference: str) -> None:
        lands_at = self.lands_at.get(reference)
        payout = self.payouts.get(reference)
        if lands_at is not None and payout is not None and timezone.now() >= lands_at:
            if payout.state == PENDING:
                payout.state, payout.tx_hash = COMPLETED, _tx_hash(reference)
            self.lands_at.pop(reference)

    def land_due(self) -> None:
        """The custodian pays its late payouts when their time comes, whether anyone asks or not."""
        with self.lock:
            for reference in list(self.lands_at):
                self._land(reference)

    def send(self, *, reference: str, destination: str, amount_u: int) -> tuple[int | None, dict[str, Any]]:
        """(HTTP status, body) for a payout request; status None: no answer (the client times out)."""
        with self.lock:
            self.sends[reference] += 1
            self._land(reference)
            behaviour = self.behaviour.get(reference)
            payout = self.payouts.get(reference)
            if behaviour == "fail" and payout is None:
                payout = Payout(reference, destination, amount_u, FAILED, reason="chaos: refused")
                self.payouts[reference] = payout
            if behaviour == "timeout":
                self.behaviour.pop(reference)  # never received; the next send goes through
                return None, {}
            if behaviour == "late" and payout is None:
                self.payouts[reference] = Payout(reference, destination, amount_u, PENDING)
                return None, {}  # received: it lands later
            if payout is None:
                payout = Payout(reference, destination, amount_u, COMPLETED, tx_hash=_tx_hash(reference))
                self.payouts[reference] = payout
            if payout.state == FAILED:
                return 422, {"detail": payout.reason}
            if payout.state == PENDING:
                return 409, {"detail": "in progress"}
            return 201, {"tx_hash": payout.tx_hash}

    def status(self, reference: str) -> dict[str, Any] | None:
        with self.lock:
            self._land(reference)
            payout = self.payouts.get(reference)
            return payout.answer() if payout is not None else None

    def state(self, reference: str) -> str:
        """What the custodian says of `reference`: pending | completed | failed, or "" (never received)."""
        with self.lock:
            payout = self.payouts.get(reference)
            return payout.state if payout is not None else ""

    def paid(self) -> dict[str, Payout]:
        with self.lock:
            return {ref: p for ref, p in self.payouts.items() if p.state == COMPLETED}
