"""The HTTP payout adapter against a local stub custody service (http.server on 127.0.0.1, random port)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from ledger.models import Account
from ledger.selectors import account_balance_u, tvl_get, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.withdrawals.helpers import ADDRESS
from withdrawals.adapters import COMPLETED, UNKNOWN, HttpPayoutAdapter, payout_adapter_get
from withdrawals.exceptions import PayoutRejected, PayoutUnavailable
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_request, withdrawals_process


class StubCustody:
    """A payout service: mode "ok" pays, "reject" answers 422, "error" 500, "hang" records the payout
    and then never answers in time (the response is lost: the client times out)."""

    def __init__(self):
        self.mode = "ok"
        self.payouts: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(("POST", self.path, dict(self.headers), body))
                if self.headers.get("Authorization") != "Bearer stub-token":
                    return self._answer(401, {"detail": "bad token"})
                if stub.mode == "reject":
                    return self._answer(422, {"detail": "destination is sanctioned"})
                if stub.mode == "error":
                    return self._answer(500, {"detail": "boom"})
                payout = stub.payouts.setdefault(
                    body["reference"], {"status": "completed", "tx_hash": "0x" + body["reference"].rjust(64, "0")}
                )
                if stub.mode == "hang":
                    stub.release.wait(5)
                    return None
                return self._answer(201, {"tx_hash": payout["tx_hash"]})

            def do_GET(self):
                stub.requests.append(("GET", self.path, dict(self.headers), {}))
                reference = self.path.rsplit("/", 1)[-1]
                if reference not in stub.payouts:
                    return self._answer(404, {"detail": "unknown reference"})
                return self._answer(200, stub.payouts[reference])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def posts(self) -> int:
        return sum(1 for method, *_ in self.requests if method == "POST")


@pytest.fixture
def custody():
    stub = StubCustody()
    with override_settings(
        PAYOUT_ADAPTER="http", PAYOUT_HTTP_URL=stub.url, PAYOUT_HTTP_TOKEN="stub-token", PAYOUT_HTTP_TIMEOUT_SECONDS=0.3
    ):
        yield stub
    stub.close()


def test_setting_chooses_the_http_adapter(custody):
    assert isinstance(payout_adapter_get(), HttpPayoutAdapter)


def test_success_returns_tx_hash_and_sends_token_and_idempotency_key(custody):
    tx_hash = payout_adapter_get().send(ADDRESS, 1_500_000, "42")
    assert tx_hash == "0x" + "42".rjust(64, "0")
    method, path, headers, body = custody.requests[0]
    assert (method, path) == ("POST", "/payouts")
    assert body == {"reference": "42", "destination": ADDRESS, "amount_u": 1_500_000}
    assert headers["Authorization"] == "Bearer stub-token"
    assert headers["Idempotency-Key"] == "42"
    assert payout_adapter_get().status("42").state == COMPLETED
    assert payout_adapter_get().status("43").state == UNKNOWN


def test_4xx_is_a_final_rejection(custody):
    custody.mode = "reject"
    with pytest.raises(PayoutRejected, match="sanctioned"):
        payout_adapter_get().send(ADDRESS, 1_500_000, "7")


def test_wrong_token_is_a_rejection(custody):
    with pytest.raises(PayoutRejected, match="401"):
        HttpPayoutAdapter(url=custody.url, token="wrong", timeout=0.3).send(ADDRESS, 1, "8")


def test_timeout_leaves_the_outcome_unknown(custody):
    custody.mode = "hang"
    with pytest.raises(PayoutUnavailable, match="timed out"):
        payout_adapter_get().send(ADDRESS, 1_500_000, "9")


def test_5xx_and_unreachable_leave_the_outcome_unknown(custody):
    custody.mode = "error"
    with pytest.raises(PayoutUnavailable, match="500"):
        payout_adapter_get().send(ADDRESS, 1_500_000, "10")
    closed = StubCustody()
    closed.close()
    with pytest.raises(PayoutUnavailable, match="unreachable"):
        HttpPayoutAdapter(url=closed.url, token="t", timeout=0.3).send(ADDRESS, 1, "11")


@pytest.mark.money
@pytest.mark.django_db
def test_process_through_http_completes(custody, funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=3_000_000, destination=ADDRESS, source="api")
    assert withdrawals_process(source="cli").completed == [withdrawal.pk]
    assert Withdrawal.objects.get(pk=withdrawal.pk).tx_hash == custody.payouts[withdrawal.payout_reference]["tx_hash"]
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 3_000_000
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_process_through_http_4xx_fails_and_refunds(custody, funded_bettor):
    custody.mode = "reject"
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=3_000_000, destination=ADDRESS, source="api")
    assert withdrawals_process(source="cli").failed == [withdrawal.pk]
    assert "sanctioned" in Withdrawal.objects.get(pk=withdrawal.pk).failure_reason
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_process_through_http_timeout_then_resume_asks_status_and_pays_once(custody, funded_bettor):
    # given: the custodian paid, but its answer was lost (timeout)
    custody.mode = "hang"
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=3_000_000, destination=ADDRESS, source="api")
    report = withdrawals_process(source="cli")
    assert report.in_flight == [withdrawal.pk]
    withdrawal.refresh_from_db()
    assert withdrawal.status == "PROCESSING" and "timed out" in withdrawal.last_error
    assert tvl_get().pending_withdrawals_u == 3_000_000
    # when: the lease runs out and a later run resumes it
    custody.mode = "ok"
    Withdrawal.objects.filter(pk=withdrawal.pk).update(lease_until=None)
    assert withdrawals_process(source="cli").completed == [withdrawal.pk]
    # then: it asked, and did not POST a second time
    assert custody.posts() == 1
    assert [(method, path) for method, path, *_ in custody.requests][-1] == (
        "GET",
        f"/payouts/{withdrawal.payout_reference}",
    )
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 3_000_000
    assert tvl_get().pending_withdrawals_u == 0
    assert_ledger_invariants()
