"""Issue 9, finding 2: a withdrawal could be refunded AND paid.

A payout run used to claim its whole batch with one lease and then send the items one by one; once a
later item's lease had run out, staff's "mark failed" asked the custodian (who had not seen it yet),
refunded it, and the still-running worker sent it anyway: FAILED here, paid there, and both
`ledger_audit` and `reconcile` passed. Now each item is claimed (and re-checked under its row lock)
immediately before it is sent, "mark failed" on a PROCESSING item is refused and flags it for
reconciliation, only the custodian's answer settles such an item, the payout reference is a UUID
that never repeats, and `reconcile` compares every recent withdrawal with the custodian's record.
"""

import json
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from common.errors import PermissionDenied
from ledger.models import Account
from ledger.selectors import account_balance_u, user_balance_u
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund
from tests.proof.conftest import run_threads, staff_user
from withdrawals.adapters import COMPLETED, FAILED, PENDING, UNKNOWN, PayoutStatus
from withdrawals.exceptions import InvalidTransition, PayoutInFlight
from withdrawals.models import SimulatedPayout, Withdrawal
from withdrawals.services import (
    withdrawal_complete,
    withdrawal_fail,
    withdrawal_request,
    withdrawal_resolve,
    withdrawals_process,
)

ADDRESS = "0x" + "5e" * 20
USDC = 1_000_000
PORTS = range(18200, 18300)  # this helper's port range


class SlowCustodian:
    """A custody service shaped like the real one: POST /payouts, GET /payouts/<reference>.

    Idempotent by reference. A new payout is "pending" while the send takes `send_seconds` (the
    n-th POSTs listed in `slow_posts` take `slow_seconds`: longer than the client's timeout, so
    the answer is lost though the payout happens), then "completed"; `reject_posts` are refused.
    """

    def __init__(self, *, send_seconds: float, slow_posts=(), slow_seconds: float = 0.0, reject_posts=()):
        self.send_seconds, self.slow_posts, self.slow_seconds = send_seconds, set(slow_posts), slow_seconds
        self.reject_posts = set(reject_posts)
        self.payouts: dict[str, dict] = {}
        self.posts: list[str] = []  # references, in arrival order
        self.busy = 0
        self.lock = threading.Lock()
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
                with suppress(OSError):  # the client gave up waiting (its timeout): the payout happened
                    self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != "Bearer stub-token":
                    return self._answer(401, {"detail": "bad token"})
                reference = body["reference"]
                with stub.lock:
                    stub.posts.append(reference)
                    index = len(stub.posts) - 1
                    known = stub.payouts.get(reference)
                    if known is None:
                        known = stub.payouts[reference] = {
                            "status": "pending",
                            "amount_u": body["amount_u"],
                            "destination": body["destination"],
                            "tx_hash": "",
                        }
                        new = True
                    else:
                        new = False
                if not new:  # the same reference again is the same payout
                    if known["status"] == "pending":
                        return self._answer(409, {"detail": "payout in progress"})
                    if known["status"] == "failed":
                        return self._answer(422, {"detail": known["reason"]})
                    return self._answer(201, {"tx_hash": known["tx_hash"]})
                with stub.lock:
                    stub.busy += 1
                try:
                    time.sleep(stub.slow_seconds if index in stub.slow_posts else stub.send_seconds)
                    with stub.lock:
                        if index in stub.reject_posts:
                            known.update(status="failed", reason="destination is sanctioned")
                        else:
                            known.update(status="completed", tx_hash="0x" + uuid.uuid4().hex * 2)
                finally:
                    with stub.lock:
                        stub.busy -= 1
                if known["status"] == "failed":
                    return self._answer(422, {"detail": known["reason"]})
                return self._answer(201, {"tx_hash": known["tx_hash"]})

            def do_GET(self):
                reference = self.path.rsplit("/", 1)[-1]
                with stub.lock:
                    known = dict(stub.payouts.get(reference) or {})
                if not known:
                    return self._answer(404, {"detail": "unknown reference"})
                return self._answer(200, known)

        self.server = None
        for port in PORTS:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        assert self.server is not None, f"no free port in {PORTS}"
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def paid(self, reference: str) -> bool:
        with self.lock:
            return self.payouts.get(reference, {}).get("status") == "completed"

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.busy == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the custodian stub is still sending")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def custodian(**behaviour):
    stub = SlowCustodian(**behaviour)
    try:
        with override_settings(
            PAYOUT_ADAPTER="http",
            PAYOUT_HTTP_URL=stub.url,
            PAYOUT_HTTP_TOKEN="stub-token",
            PAYOUT_HTTP_TIMEOUT_SECONDS=2.5,
            WITHDRAWAL_PROCESSING_LEASE_SECONDS=1,
        ):
            yield stub
    finally:
        stub.close()


def _reconcile() -> tuple[bool, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("reconcile", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


# --- 1. the lease scenario --------------------------------------------------------------------


@pytest.mark.money
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_mark_failed_during_a_slow_run_never_refunds_a_paid_withdrawal():
    # given: six bettors, each with one 10 USDC withdrawal; a 1 s lease; a custodian that takes 1.5 s per
    # payout (longer than the lease) and 4 s for the third one (longer than the 2.5 s client timeout)
    bettors = [UserFactory() for _ in range(6)]
    for bettor in bettors:
        fund(bettor, 25 * USDC)
    ids = [
        withdrawal_request(user=bettor, amount_u=10 * USDC, destination=ADDRESS, source="api")[0].pk
        for bettor in bettors
    ]
    finance = staff_user(email="finance@example.com", perms=["withdrawals.fail_withdrawal"], group="finance-proof")
    staff_outcomes: dict[int, str] = {}

    with custodian(send_seconds=1.5, slow_posts={2}, slow_seconds=4.0) as stub:
        # when: a payout run in one thread; in another, staff "mark failed" every item during the run, from
        # the last one back (an item whose old batch lease has run out before the worker reaches it)
        def work(index: int):
            if index == 0:
                return withdrawals_process(source="beat")
            time.sleep(1.2)
            for withdrawal_id in reversed(ids):
                try:
                    withdrawal_fail(
                        withdrawal_id=withdrawal_id, reason="customer asked", source="admin", acting_user=finance
                    )
                    staff_outcomes[withdrawal_id] = "refunded"
                except (PayoutInFlight, InvalidTransition) as exc:
                    staff_outcomes[withdrawal_id] = exc.code
                time.sleep(0.7)
            return None

        run_threads(2, work)
        stub.wait_idle()

        # then, before any resolution: no withdrawal is refunded and paid; what is not settled is PROCESSING
        # and flagged for reconciliation, and reconcile names it
        rows = {w.pk: w for w in Withdrawal.objects.filter(pk__in=ids)}
        for withdrawal_id in ids:
            row = rows[withdrawal_id]
            if row.status == "FAILED":
                assert not stub.paid(row.reference), f"withdrawal {withdrawal_id} refunded and paid ({staff_outcomes})"
            if row.status == "COMPLETED":
                assert stub.paid(row.reference)
        assert set(stub.payouts) <= {row.reference for row in rows.values()}  # one reference per withdrawal
        unsettled = [pk for pk, row in rows.items() if row.status == "PROCESSING"]
        assert all(rows[pk].needs_reconciliation for pk in unsettled), staff_outcomes
        assert "refunded" in staff_outcomes.values() and "payout_may_be_in_flight" in staff_outcomes.values()
        ok, out = _reconcile()
        assert ok == (not unsettled), out
        for pk in unsettled:
            assert f"withdrawal {pk} (10000000 u, reference {rows[pk].reference}) is PROCESSING here" in out

        # when: the next run, after the lease, settles the flagged ones on the custodian's answer
        time.sleep(1.1)
        withdrawals_process(source="beat")

        # then: every withdrawal is COMPLETED iff the custodian paid it, else refunded; money exact to the u
        paid_count = 0
        for bettor, withdrawal_id in zip(bettors, ids, strict=True):
            row = Withdrawal.objects.get(pk=withdrawal_id)
            paid = stub.paid(row.reference)
            assert row.status == ("COMPLETED" if paid else "FAILED"), (row, staff_outcomes)
            assert not row.needs_reconciliation
            assert user_balance_u(user_id=bettor.pk) == (15 if paid else 25) * USDC
            paid_count += paid
        assert sum(stub.paid(reference) for reference in stub.payouts) == paid_count  # each paid at most once
        assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 10 * USDC * paid_count
        assert account_balance_u(code=Account.WITHDRAWALS_PENDING) == 0
        assert 0 < paid_count < 6  # some were paid; some were refunded before they were ever sent
        assert_ledger_invariants()
        call_command("ledger_audit")
        ok, out = _reconcile()
        assert ok, out
        assert "payouts: 6 withdrawal(s) agree" in out


# --- 2. the reference is a UUID that never repeats ---------------------------------------------


@pytest.mark.django_db
def test_payout_reference_is_a_fresh_uuid_not_the_row_id(funded_bettor):
    first, _ = withdrawal_request(user=funded_bettor, amount_u=USDC, destination=ADDRESS, source="api")
    second, _ = withdrawal_request(user=funded_bettor, amount_u=USDC, destination=ADDRESS, source="api")
    for withdrawal in (first, second):
        assert str(uuid.UUID(withdrawal.reference)) == withdrawal.reference == withdrawal.payout_reference
        assert withdrawal.reference != str(withdrawal.pk)
    assert first.reference != second.reference


@pytest.mark.django_db
def test_the_same_id_in_another_epoch_gets_another_reference(funded_bettor):
    # a restore from an older snapshot hands the same id out again: the row is new, so is its reference
    before = Withdrawal.objects.create(user=funded_bettor, amount_u=USDC, destination=ADDRESS)
    pk, old_reference = before.pk, before.reference
    before.delete()
    again = Withdrawal.objects.create(pk=pk, user=funded_bettor, amount_u=USDC, destination=ADDRESS)
    assert again.pk == pk and again.reference != old_reference


@pytest.mark.money
@pytest.mark.django_db
def test_a_withdrawal_whose_id_the_custodian_already_paid_before_a_restore_is_paid_for_real(funded_bettor):
    # given: the custodian's history from before a restore holds a paid payout under this id ("1" then)
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=3 * USDC, destination=ADDRESS, source="api")
    SimulatedPayout.objects.create(
        reference=str(withdrawal.pk), destination=ADDRESS, amount_u=7 * USDC, tx_hash="0xold", state=COMPLETED
    )

    # when: it is processed
    assert withdrawals_process(source="beat").completed == [withdrawal.pk]

    # then: it is a new payout of its own amount under its own reference, not "already paid" by the old one
    row = Withdrawal.objects.get(pk=withdrawal.pk)
    payout = SimulatedPayout.objects.get(reference=row.reference)
    assert (payout.amount_u, row.tx_hash) == (3 * USDC, payout.tx_hash)
    assert row.tx_hash != "0xold"
    assert SimulatedPayout.objects.count() == 2


@pytest.mark.django_db
def test_migration_keeps_the_id_reference_of_rows_that_existed_before_it(funded_bettor):
    # A row from before the payout_reference column keeps str(pk): the custodian knows it by that key.
    from importlib import import_module

    from django.apps import apps

    migration = import_module("withdrawals.migrations.0005_payout_reference")
    legacy, _ = withdrawal_request(user=funded_bettor, amount_u=USDC, destination=ADDRESS, source="api")
    Withdrawal.objects.filter(pk=legacy.pk).update(payout_reference=None)
    migration.references_from_ids(apps, None)
    assert Withdrawal.objects.get(pk=legacy.pk).reference == str(legacy.pk)
    # and rolling back is refused while a PROCESSING row carries a UUID reference
    fresh, _ = withdrawal_request(user=funded_bettor, amount_u=USDC, destination=ADDRESS, source="api")
    migration.refuse_if_uuid_references_in_flight(apps, None)  # QUEUED: fine
    Withdrawal.objects.filter(pk=fresh.pk).update(status="PROCESSING")
    from common.migration_refusal import MigrationRefused  # the migrate command makes it a sentence

    with pytest.raises(MigrationRefused, match="pay them twice"):
        migration.refuse_if_uuid_references_in_flight(apps, None)


# --- 3. reconcile compares with the custodian ---------------------------------------------------


@pytest.mark.money
@pytest.mark.django_db
def test_reconcile_names_a_withdrawal_refunded_here_and_paid_at_the_custodian(funded_bettor):
    # given: a clean system with one paid and one refunded withdrawal
    paid, _ = withdrawal_request(user=funded_bettor, amount_u=2 * USDC, destination=ADDRESS, source="api")
    withdrawals_process(source="beat")
    refunded, _ = withdrawal_request(user=funded_bettor, amount_u=3 * USDC, destination=ADDRESS, source="api")
    withdrawal_fail(withdrawal_id=refunded.pk, reason="customer asked", source="cli")
    ok, out = _reconcile()
    assert ok, out
    assert "payouts: 2 withdrawal(s) agree with the payout service's record" in out

    # when: the custodian holds a payout for the refunded one (the old race), and another amount for the paid one
    SimulatedPayout.objects.create(
        reference=refunded.reference, destination=ADDRESS, amount_u=3 * USDC, tx_hash="0xfeed", state=COMPLETED
    )
    SimulatedPayout.objects.filter(reference=paid.reference).update(amount_u=2 * USDC + 1)

    # then: reconcile exits non-zero and says which and why, though the ledger itself balances
    ok, out = _reconcile()
    assert not ok
    assert (
        f"withdrawal {refunded.pk} (3000000 u, reference {refunded.reference}) was refunded here (FAILED) but the "
        "payout service reports it completed (tx 0xfeed): paid and refunded"
    ) in out
    assert f"withdrawal {paid.pk} (2000000 u, reference {paid.reference}): the payout service holds 2000001 u" in out
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_reconcile_names_a_completed_withdrawal_the_custodian_never_paid(funded_bettor):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=2 * USDC, destination=ADDRESS, source="api")
    withdrawals_process(source="beat")
    SimulatedPayout.objects.filter(reference=withdrawal.reference).delete()
    ok, out = _reconcile()
    assert not ok
    assert (
        f"withdrawal {withdrawal.pk} (2000000 u, reference {withdrawal.reference}) is COMPLETED here but the payout "
        "service reports it unknown: recorded as paid, not paid"
    ) in out
    with pytest.raises(CommandError, match="--payout-days"):
        call_command("reconcile", "--payout-days", "-1")


# --- 4. the state transitions -----------------------------------------------------------------


class _ScriptedAdapter:
    """The custodian's answer to `status`, chosen by the test; `send` must not be called."""

    answer = PayoutStatus(UNKNOWN)
    sent: list[str] = []

    def send(self, destination, amount_u, reference):
        self.sent.append(reference)
        return "0x" + "ab" * 32

    def status(self, reference, tx_hash=""):
        return self.answer


@pytest.fixture
def scripted(settings):
    settings.PAYOUT_ADAPTER = f"{__name__}._ScriptedAdapter"
    _ScriptedAdapter.sent = []
    _ScriptedAdapter.answer = PayoutStatus(UNKNOWN)
    return _ScriptedAdapter


def _in_flight(user, amount_u: int = 4 * USDC) -> Withdrawal:
    """A withdrawal whose send started and whose answer never came (the worker died, or timed out)."""
    withdrawal, _ = withdrawal_request(user=user, amount_u=amount_u, destination=ADDRESS, source="api")
    now = timezone.now()
    Withdrawal.objects.filter(pk=withdrawal.pk).update(
        status="PROCESSING", send_started_at=now, processing_started_at=now, lease_until=now, attempts=1
    )
    return Withdrawal.objects.get(pk=withdrawal.pk)


@pytest.mark.money
@pytest.mark.django_db
def test_mark_failed_on_queued_refunds_at_once(funded_bettor, scripted):
    withdrawal, _ = withdrawal_request(user=funded_bettor, amount_u=4 * USDC, destination=ADDRESS, source="api")
    failed = withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
    assert (failed.status, failed.needs_reconciliation) == ("FAILED", False)
    assert user_balance_u(user_id=funded_bettor.pk) == 100 * USDC
    # and the worker's claim never picks it up again
    assert withdrawals_process(source="beat").claimed == 0
    assert scripted.sent == []


@pytest.mark.money
@pytest.mark.django_db
def test_mark_failed_on_in_flight_flags_for_reconciliation_and_refunds_nothing(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    with pytest.raises(PayoutInFlight) as raised:
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
    assert raised.value.code == "payout_may_be_in_flight" and raised.value.status == 409
    assert "not refunded" in raised.value.detail
    row = Withdrawal.objects.get(pk=withdrawal.pk)
    assert (row.status, row.needs_reconciliation, row.reconciliation_reason) == ("PROCESSING", True, "customer asked")
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC
    assert account_balance_u(code=Account.WITHDRAWALS_PENDING) == 4 * USDC
    # a flagged one is never sent again, even when the custodian does not know it (yet)
    assert withdrawals_process(source="beat").in_flight == [withdrawal.pk]
    assert scripted.sent == []
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "PROCESSING"


@pytest.mark.django_db
def test_mark_failed_without_the_permission_changes_nothing(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    clerk = staff_user(email="clerk@example.com", perms=["withdrawals.view_withdrawal"], group="viewers-proof")
    with pytest.raises(PermissionDenied):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="x", source="admin", acting_user=clerk)
    with pytest.raises(PermissionDenied):
        withdrawal_resolve(withdrawal_id=withdrawal.pk, source="admin", acting_user=clerk)
    assert not Withdrawal.objects.get(pk=withdrawal.pk).needs_reconciliation


@pytest.mark.money
@pytest.mark.django_db
def test_resolve_completed_completes_a_flagged_one(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    with pytest.raises(PayoutInFlight):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
    scripted.answer = PayoutStatus(COMPLETED, tx_hash="0x" + "cd" * 32, amount_u=4 * USDC)
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.custodian_state) == ("completed", COMPLETED)
    assert (resolution.withdrawal.status, resolution.withdrawal.tx_hash) == ("COMPLETED", "0x" + "cd" * 32)
    assert not resolution.withdrawal.needs_reconciliation
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 4 * USDC
    # terminal stays terminal: neither a refund nor a second completion
    with pytest.raises(InvalidTransition):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="late", source="cli")
    with pytest.raises(InvalidTransition):
        withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert withdrawal_complete(withdrawal_id=withdrawal.pk, tx_hash="0x" + "cd" * 32, source="cli").status == (
        "COMPLETED"
    )  # the same payout recorded again is the same record
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 4 * USDC
    assert scripted.sent == []
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_resolve_failed_refunds(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    scripted.answer = PayoutStatus(FAILED, reason="destination is sanctioned")
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.withdrawal.status) == ("failed", "FAILED")
    assert resolution.withdrawal.failure_reason == "destination is sanctioned"
    assert user_balance_u(user_id=funded_bettor.pk) == 100 * USDC
    assert account_balance_u(code=Account.WITHDRAWALS_PENDING) == 0
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_resolve_pending_leaves_it(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    with pytest.raises(PayoutInFlight):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
    scripted.answer = PayoutStatus(PENDING)
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.withdrawal.status) == ("in_flight", "PROCESSING")
    assert resolution.withdrawal.needs_reconciliation
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC


@pytest.mark.money
@pytest.mark.django_db
def test_resolve_unknown_refunds_a_flagged_one_only_after_the_window(funded_bettor, scripted, settings):
    settings.WITHDRAWAL_UNKNOWN_PAYOUT_SECONDS = 600
    withdrawal = _in_flight(funded_bettor)
    with pytest.raises(PayoutInFlight):
        withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
    # just sent: the custodian may simply not have it yet -- never refunded on that
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.custodian_state, resolution.withdrawal.status) == (
        "in_flight",
        UNKNOWN,
        "PROCESSING",
    )
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC
    # ten minutes on, still unknown: never received, refunded
    Withdrawal.objects.filter(pk=withdrawal.pk).update(send_started_at=timezone.now() - timedelta(seconds=601))
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.withdrawal.status) == ("failed", "FAILED")
    assert "has no record of payout" in resolution.withdrawal.failure_reason
    assert "customer asked" in resolution.withdrawal.failure_reason
    assert user_balance_u(user_id=funded_bettor.pk) == 100 * USDC
    assert scripted.sent == []
    assert_ledger_invariants()


@pytest.mark.money
@pytest.mark.django_db
def test_resolve_unknown_on_an_unflagged_one_leaves_it_for_the_worker_to_send_again(funded_bettor, scripted):
    withdrawal = _in_flight(funded_bettor)
    Withdrawal.objects.filter(pk=withdrawal.pk).update(send_started_at=timezone.now() - timedelta(days=1))
    resolution = withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert (resolution.outcome, resolution.withdrawal.status) == ("unsent", "PROCESSING")
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC
    # the next run sends it under the same reference (the custodian's idempotency keeps it one payout)
    assert withdrawals_process(source="beat").completed == [withdrawal.pk]
    assert scripted.sent == [withdrawal.reference]
    assert account_balance_u(code=Account.EXTERNAL_WITHDRAWALS) == 4 * USDC


@pytest.mark.django_db
def test_resolve_when_the_custodian_cannot_be_asked_changes_nothing(funded_bettor, settings):
    settings.PAYOUT_ADAPTER, settings.PAYOUT_HTTP_URL = "http", "http://127.0.0.1:18299"  # nobody listens
    settings.PAYOUT_HTTP_TIMEOUT_SECONDS = 0.3
    withdrawal = _in_flight(funded_bettor)
    with pytest.raises(PayoutInFlight) as raised:
        withdrawal_resolve(withdrawal_id=withdrawal.pk, source="cli")
    assert raised.value.code == "payout_status_unavailable"
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "PROCESSING"
    assert user_balance_u(user_id=funded_bettor.pk) == 96 * USDC


@pytest.mark.money
@pytest.mark.django_db
def test_the_claim_is_rechecked_under_the_lock_before_a_resumed_send(funded_bettor, scripted, monkeypatch):
    # given: a resumed item whose custodian status is unknown; between the status answer and the send,
    # staff flag it (the window the old code's check-then-act left open)
    from withdrawals.services import payouts as services

    withdrawal = _in_flight(funded_bettor)
    real_status = _ScriptedAdapter.status

    def status_then_staff_flags(self, reference, tx_hash=""):
        answer = real_status(self, reference, tx_hash)
        with pytest.raises(PayoutInFlight):
            services.withdrawal_fail(withdrawal_id=withdrawal.pk, reason="customer asked", source="cli")
        return answer

    monkeypatch.setattr(_ScriptedAdapter, "status", status_then_staff_flags)

    # when: the run resumes it
    report = withdrawals_process(source="beat")

    # then: the locked re-check sees the flag, and nothing is sent
    assert report.in_flight == [withdrawal.pk]
    assert scripted.sent == []
    assert Withdrawal.objects.get(pk=withdrawal.pk).needs_reconciliation


@pytest.mark.django_db
def test_reconcile_with_an_unreachable_custodian_fails_with_a_sentence(funded_bettor, settings):
    withdrawal_request(user=funded_bettor, amount_u=USDC, destination=ADDRESS, source="api")
    withdrawals_process(source="beat")
    settings.PAYOUT_ADAPTER, settings.PAYOUT_HTTP_URL = "http", ""  # misconfigured: no URL
    ok, out = _reconcile()
    assert not ok
    assert "the payout service could not be asked (PAYOUT_HTTP_URL is not set.)" in out
