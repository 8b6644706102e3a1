from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from approvals.models import ApprovalRequest
from audit.models import AuditEvent
from betting.models import Bet
from ledger.selectors import user_balance_u
from rounds.models import Round
from rounds.services import round_lock
from tests.factories import UserFactory
from tests.rounds.conftest import place_bet, set_close

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:rounds_round_changelist"


def staff_with(*codenames):
    user = UserFactory(is_staff=True)
    perms = Permission.objects.filter(codename__in=["view_round", "view_bet", *codenames])
    user.user_permissions.add(*perms)
    return user


def _approve_in_admin(client, request):
    client.force_login(staff_with("settle_round", "view_approvalrequest"))
    data = {"action": "approve", "_selected_action": [request.pk], "confirm": "yes", "reason": "checked"}
    response = client.post(reverse("admin:approvals_approvalrequest_changelist"), data, follow=True)
    assert f"Request {request.pk} (round_result" in response.content.decode()


@pytest.fixture
def bets_round(open_round, users):
    a, b, c = users(3)
    place_bet(open_round, a, "UP", 1_000_000)
    place_bet(open_round, b, "UP", 3_000_000)
    place_bet(open_round, c, "DOWN", 2_000_000)
    return open_round, (a, b, c)


def test_changelist_shows_pools_and_bet_count(client, bets_round):
    client.force_login(staff_with())
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    body = response.content.decode()
    assert "20250908" in body and "4000000" in body and "2000000" in body
    assert response.context["cl"].result_list[0].bet_count == 3


def test_actions_offered_only_with_permissions(client, bets_round):
    client.force_login(staff_with())
    assert client.get(reverse(CHANGELIST)).context["action_form"] is None  # view-only staff: no actions
    client.force_login(staff_with("lock_round", "settle_round"))
    actions = dict(client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices)
    assert {"lock_rounds", "settle_up", "settle_down", "settle_auto"} <= set(actions)
    assert "void_rounds" not in actions


def test_settle_up_shows_a_preview_then_needs_a_reason(client, bets_round):
    round_, (a, b, c) = bets_round
    round_lock(code=round_.code)
    client.force_login(staff_with("settle_round"))
    data = {"action": "settle_up", "_selected_action": [round_.pk]}

    # the confirmation page: pools, fee, winners, paid out
    page = client.post(reverse(CHANGELIST), data)
    assert page.status_code == 200
    preview = page.context["rows"][0].preview
    assert (preview.fee_u, preview.winners_count, preview.paid_out_u, preview.dust_u) == (20_000, 2, 5_980_000, 0)
    assert b"5980000" in page.content

    # confirming without a reason changes nothing
    page = client.post(reverse(CHANGELIST), {**data, "confirm": "yes", "reason": "  "})
    assert page.status_code == 200 and page.context["form"].errors
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"

    # with a reason it is a four-eyes request: nothing settled yet
    response = client.post(reverse(CHANGELIST), {**data, "confirm": "yes", "reason": "verified close on two sources"})
    assert response.status_code == 302
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    # another operator approves it on the approvals page: it settles, audited with both
    _approve_in_admin(client, ApprovalRequest.objects.get(kind="round_result", target=round_.code))
    assert Round.objects.get(pk=round_.pk).result == "UP"
    # UP pool 4 000 000, DOWN 2 000 000: fee 20 000; a: 1 000 000 + 495 000, b: 3 000 000 + 1 485 000
    assert user_balance_u(user_id=a.pk) == 10_000_000_000 + 495_000
    assert user_balance_u(user_id=b.pk) == 10_000_000_000 + 1_485_000
    event = AuditEvent.objects.get(action="round.settle")
    assert (event.source, event.actor.is_staff) == ("admin", True)
    assert event.reason.startswith("verified close on two sources (requested by ")


def test_settle_auto_without_close_shows_the_refusal_and_changes_nothing(client, bets_round):
    round_, _ = bets_round
    round_lock(code=round_.code)
    client.force_login(staff_with("settle_round"))
    data = {"action": "settle_auto", "_selected_action": [round_.pk]}
    page = client.post(reverse(CHANGELIST), data)
    assert "no_official_close" in page.context["rows"][0].error
    response = client.post(reverse(CHANGELIST), {**data, "confirm": "yes", "reason": "try"}, follow=True)
    assert "no_official_close" in response.content.decode()
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    set_close("NDX", date(2025, 9, 5), "10")
    set_close("NDX", date(2025, 9, 8), "9")
    assert client.post(reverse(CHANGELIST), data).context["rows"][0].preview.plan.result == "DOWN"


def test_lock_and_void_from_the_admin(client, bets_round):
    round_, users = bets_round
    client.force_login(staff_with("lock_round", "void_round"))
    client.post(
        reverse(CHANGELIST),
        {"action": "lock_rounds", "_selected_action": [round_.pk], "confirm": "yes", "reason": "halt"},
    )
    assert Round.objects.get(pk=round_.pk).status == "LOCKED"
    client.post(
        reverse(CHANGELIST),
        {"action": "void_rounds", "_selected_action": [round_.pk], "confirm": "yes", "reason": "bad feed"},
    )
    assert Round.objects.get(pk=round_.pk).result == "VOID"
    assert all(user_balance_u(user_id=u.pk) == 10_000_000_000 for u in users)
    assert set(Bet.objects.values_list("status", flat=True)) == {"REFUNDED"}


def test_settling_twice_from_the_admin_is_a_red_message(client, bets_round):
    round_, _ = bets_round
    round_lock(code=round_.code)
    client.force_login(staff_with("settle_round"))
    data = {"action": "settle_up", "_selected_action": [round_.pk], "confirm": "yes", "reason": "first"}
    client.post(reverse(CHANGELIST), data)
    _approve_in_admin(client, ApprovalRequest.objects.get(kind="round_result"))
    client.force_login(staff_with("settle_round"))
    response = client.post(reverse(CHANGELIST), {**data, "reason": "second"}, follow=True)
    assert "round_already_settled" in response.content.decode()
    assert AuditEvent.objects.filter(action="round.settle").count() == 1


def test_bets_and_settlements_browsable_read_only(client, bets_round):
    round_, _ = bets_round
    client.force_login(staff_with())
    assert client.get(reverse("admin:betting_bet_changelist")).status_code == 200
    bet = Bet.objects.first()
    page = client.get(reverse("admin:betting_bet_change", args=[bet.pk]))
    assert page.status_code == 200 and b"Save" not in page.content


def test_marketdata_admin_enters_a_close(client):
    admin_user = UserFactory(is_staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:marketdata_officialclose_add"),
        {"symbol": "NDX", "date": "2025-09-08", "price": "23762.10", "source": "nasdaq.com"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="marketdata.set_close", source="admin").count() == 1
