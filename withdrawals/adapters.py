"""Payout adapters: how a withdrawal leaves the house.

The interface is two calls, both keyed by the withdrawal's `payout_reference` (a UUID, globally unique and
never reused: not the row id, which repeats after a restore) as the custodian's idempotency key:
- `send(destination, amount_u, reference) -> tx_hash`: pay, or raise PayoutRejected (final, refund)
  or PayoutUnavailable (outcome unknown: ask `status` later, never assume it failed);
- `status(reference, tx_hash="") -> PayoutStatus`: what the custodian knows about that reference
  ("unknown" = never received, safe to send again with the same reference) and, when it says, the amount
  it holds for that reference (`reconcile` compares it with ours).

`SETTINGS.PAYOUT_ADAPTER` chooses: "simulated" (default), "http", or a dotted path to a class.
"""

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Protocol

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from withdrawals.exceptions import PayoutRejected, PayoutUnavailable
from withdrawals.models import SimulatedPayout

UNKNOWN, PENDING, COMPLETED, FAILED = "unknown", "pending", "completed", "failed"


@dataclass(frozen=True)
class PayoutStatus:
    state: str  # unknown | pending | completed | failed
    tx_hash: str = ""
    reason: str = ""
    amount_u: int | None = None  # None: the custodian did not say


class PayoutAdapter(Protocol):
    def send(self, destination: str, amount_u: int, reference: str) -> str: ...

    def status(self, reference: str, tx_hash: str = "") -> PayoutStatus: ...


class SimulatedPayoutAdapter:
    """For demos and tests: pays into the `simulated_payouts` table.

    The failure draw is seeded by the reference, so a given withdrawal always gets the
    same outcome (deterministic in tests); a rate of 0 never fails, 1 always fails.
    """

    def __init__(self, *, failure_rate: float | None = None, delay_seconds: float | None = None):
        self.failure_rate = settings.PAYOUT_SIMULATED_FAILURE_RATE if failure_rate is None else failure_rate
        self.delay_seconds = settings.PAYOUT_SIMULATED_DELAY_SECONDS if delay_seconds is None else delay_seconds

    def send(self, destination: str, amount_u: int, reference: str) -> str:
        existing = SimulatedPayout.objects.filter(reference=reference).first()
        if existing is None:
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            failed = random.Random(f"payout:{reference}").random() < self.failure_rate
            try:
                with transaction.atomic():
                    existing = SimulatedPayout.objects.create(
                        reference=reference,
                        destination=destination,
                        amount_u=amount_u,
                        tx_hash="" if failed else "0x" + hashlib.sha256(f"sim:{reference}".encode()).hexdigest(),
                        state=FAILED if failed else COMPLETED,
                        reason="simulated payout failure" if failed else "",
                    )
            except IntegrityError:  # a twin sent the same reference first: same payout
                existing = SimulatedPayout.objects.get(reference=reference)
        if existing.state == FAILED:
            raise PayoutRejected(existing.reason)
        return existing.tx_hash

    def status(self, reference: str, tx_hash: str = "") -> PayoutStatus:
        payout = SimulatedPayout.objects.filter(reference=reference).first()
        if payout is None:
            return PayoutStatus(UNKNOWN)
        return PayoutStatus(payout.state, tx_hash=payout.tx_hash, reason=payout.reason, amount_u=payout.amount_u)


class HttpPayoutAdapter:
    """A JSON custody/payout service.

    POST {url}/payouts {"reference", "destination", "amount_u"} with `Authorization: Bearer <token>`
    and `Idempotency-Key: <reference>` -> 2xx {"tx_hash"}; GET {url}/payouts/<reference> -> 200
    {"status", "tx_hash", "reason", "amount_u"?} or 404 (never seen). 4xx on send is a refusal; timeouts,
    connection errors and 5xx leave the outcome unknown.
    """

    def __init__(self, *, url: str | None = None, token: str | None = None, timeout: float | None = None):
        self.url = (settings.PAYOUT_HTTP_URL if url is None else url).rstrip("/")
        self.token = settings.PAYOUT_HTTP_TOKEN if token is None else token
        self.timeout = settings.PAYOUT_HTTP_TIMEOUT_SECONDS if timeout is None else timeout
        if not self.url:
            raise PayoutUnavailable("PAYOUT_HTTP_URL is not set.")

    def _headers(self, reference: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Idempotency-Key": reference, "Accept": "application/json"}

    def _call(self, method: str, path: str, reference: str, body: dict | None = None) -> requests.Response:
        try:
            return requests.request(
                method, f"{self.url}{path}", json=body, headers=self._headers(reference), timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise PayoutUnavailable(f"payout service timed out after {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise PayoutUnavailable(f"payout service unreachable: {exc.__class__.__name__}") from exc

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def send(self, destination: str, amount_u: int, reference: str) -> str:
        body = {"reference": reference, "destination": destination, "amount_u": amount_u}
        response = self._call("POST", "/payouts", reference, body)
        data = self._json(response)
        if 200 <= response.status_code < 300:
            tx_hash = str(data.get("tx_hash") or "")
            if not tx_hash:
                raise PayoutUnavailable("payout service accepted the payout without a tx_hash")
            return tx_hash
        if 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429):
            detail = data.get("detail") or data.get("error") or response.reason
            raise PayoutRejected(f"payout refused ({response.status_code}): {detail}")
        raise PayoutUnavailable(f"payout service answered {response.status_code}")

    def status(self, reference: str, tx_hash: str = "") -> PayoutStatus:
        response = self._call("GET", f"/payouts/{reference}", reference)
        if response.status_code == 404:
            return PayoutStatus(UNKNOWN)
        if response.status_code != 200:
            raise PayoutUnavailable(f"payout status answered {response.status_code}")
        data = self._json(response)
        state = str(data.get("status") or "").lower()
        if state not in (PENDING, COMPLETED, FAILED):
            raise PayoutUnavailable(f"payout status {state!r} is not understood")
        amount_u = data.get("amount_u")
        return PayoutStatus(
            state,
            tx_hash=str(data.get("tx_hash") or ""),
            reason=str(data.get("reason") or ""),
            amount_u=amount_u if isinstance(amount_u, int) and not isinstance(amount_u, bool) else None,
        )


ADAPTERS = {"simulated": SimulatedPayoutAdapter, "http": HttpPayoutAdapter}


def payout_adapter_get() -> PayoutAdapter:
    name = settings.PAYOUT_ADAPTER
    adapter_class = ADAPTERS.get(name) or import_string(name)
    return adapter_class()
