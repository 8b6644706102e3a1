"""The admin driven in a real browser (headless Chromium via Playwright) against a live server.

An operator settles a LOCKED round through the confirmation page (pools, payout total, a
reason) and finds it SETTLED with its audit entry; a read-only auditor is offered no action.
Screenshots land in /tmp/updown-proof/ for a human look.
"""

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from betting.services import bet_place
from ledger.selectors import user_balance_u
from ops.roles import roles_sync
from rounds.models import Round
from rounds.services import round_lock, round_open
from tests.factories import UserFactory, fund
from tests.proof.conftest import STAFF_PASSWORD, admin_login

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "/tmp/updown-proof"
ROUND_CODE = "20261223"  # a future trading day: bets go through the real bet_place


def _staff(email: str, role: str):
    roles_sync()
    user = UserFactory(email=email, password=STAFF_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def locked_round_with_bets():
    round_, _ = round_open(code=ROUND_CODE, force=True)
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    for user in (alice, bob, carol):
        fund(user, 10_000_000)
    bet_place(user=alice, side="UP", stake_u=1_000_000)
    bet_place(user=bob, side="UP", stake_u=3_000_000)
    bet_place(user=carol, side="DOWN", stake_u=2_000_000)
    round_lock(code=round_.code)
    return round_, (alice, bob, carol)


def test_operator_settles_a_locked_round_through_the_confirmation_page(live_server, page, locked_round_with_bets):
    # given
    round_, (alice, bob, carol) = locked_round_with_bets
    _staff("operator@example.com", "operator")
    admin_login(page, live_server.url, email="operator@example.com")

    # when: the operator picks the round and the "settle UP" action
    page.goto(f"{live_server.url}/admin/rounds/round/")
    assert page.locator("#result_list").inner_text().count("Locked") == 1
    page.check(f"input[name=_selected_action][value='{round_.pk}']")
    page.select_option("select[name=action]", "settle_up")
    page.click("button[name=index]")

    # then: a confirmation page with the pools, the fee and the payout total; nothing settled yet
    page.wait_for_selector("text=please confirm")
    table = page.locator("#content table").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/settle-confirmation.png", full_page=True)
    for figure in ("4000000", "2000000", "20000", "5980000"):  # UP pool, DOWN pool, fee, paid out
        assert figure in table
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"

    # when: a reason, then confirm
    page.fill("textarea[name=reason]", "close verified on two sources")
    page.click("input[type=submit][value^='Confirm']")

    # then: four eyes: a request waits for another operator, nothing is settled yet
    page.wait_for_selector("ul.messagelist")
    assert "waits for another operator's approval" in page.locator("ul.messagelist").inner_text()
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    page.goto(f"{live_server.url}/admin/")
    assert f"round_result {ROUND_CODE} result UP" in page.locator("#ops-dashboard").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/pending-approval.png", full_page=True)

    # when: a second operator approves it on the approvals page
    page.context.clear_cookies()
    _staff("second@example.com", "operator")
    admin_login(page, live_server.url, email="second@example.com")
    page.goto(f"{live_server.url}/admin/approvals/approvalrequest/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.fill("textarea[name=reason]", "checked the close too")
    page.click("input[type=submit][value^='Confirm']")

    # then: SETTLED UP, the success message, the exact payouts, the audit entries with both operators
    page.wait_for_selector("ul.messagelist")
    assert "approved by second@example.com" in page.locator("ul.messagelist").inner_text()
    page.goto(f"{live_server.url}/admin/rounds/round/")
    assert "Settled" in page.locator("#result_list").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/settled.png", full_page=True)
    settled = Round.objects.get(pk=round_.pk)
    assert (settled.status, settled.result) == ("SETTLED", "UP")
    assert user_balance_u(user_id=alice.pk) == 10_000_000 + 495_000
    assert user_balance_u(user_id=bob.pk) == 10_000_000 + 1_485_000
    assert user_balance_u(user_id=carol.pk) == 8_000_000

    page.goto(f"{live_server.url}/admin/audit/auditevent/?action=round.settle")
    audit = page.locator("#result_list").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/audit.png", full_page=True)
    assert "round.settle" in audit and "close verified on two sources" in audit and "second@example.com" in audit
    event = AuditEvent.objects.get(action="round.settle")
    assert (event.source, event.object_id, event.actor.email) == ("admin", ROUND_CODE, "second@example.com")
    assert "requested by operator@example.com, approved by second@example.com" in event.reason


def test_read_only_auditor_sees_no_settle_action(live_server, page, locked_round_with_bets):
    # given
    round_, _ = locked_round_with_bets
    _staff("auditor@example.com", "auditor")
    admin_login(page, live_server.url, email="auditor@example.com")

    # when
    page.goto(f"{live_server.url}/admin/rounds/round/")

    # then: the round is visible, but there is no action to pick and no checkbox to tick
    assert ROUND_CODE in page.locator("#result_list").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/auditor-rounds.png", full_page=True)
    assert page.locator("select[name=action]").count() == 0
    assert page.locator("input[name=_selected_action]").count() == 0
    # and posting the action by hand changes nothing
    csrf = page.context.cookies()
    token = next(cookie["value"] for cookie in csrf if cookie["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/admin/rounds/round/",
        form={"action": "settle_up", "_selected_action": str(round_.pk), "confirm": "yes", "reason": "x"},
        headers={"X-CSRFToken": token, "Referer": f"{live_server.url}/admin/rounds/round/"},
    )
    assert response.status in (200, 302, 403)
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    assert not AuditEvent.objects.filter(action="round.settle").exists()
