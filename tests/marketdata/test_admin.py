"""The market data admin: sources with health at a glance, enable/disable, test now, ticks, closes with evidence."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEvent
from marketdata.models import OfficialClose, PriceSource, PriceTick
from marketdata.stub_vendors import STOOQ_CLOSE, STOOQ_QUOTE, stooq_daily
from rounds.services import round_lock, round_open
from tests.factories import UserFactory
from tests.marketdata.test_oracle_quorum import serve
from tests.rounds.conftest import place_bet

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
SOURCES = "admin:marketdata_pricesource_changelist"


def staff_with(*codenames):
    user = UserFactory(is_staff=True)
    views = ["view_pricesource", "view_pricetick", "view_closecheck", "view_officialclose", "view_round"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=[*views, *codenames]))
    return user


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_sources_show_health_colours(client):
    PriceSource.objects.filter(name="stooq").update(enabled=True, recent="1111", last_success_at=datetime.now(NY))
    PriceSource.objects.filter(name="twelvedata").update(enabled=True, consecutive_failures=4, recent="0000")
    client.force_login(staff_with())
    body = client.get(reverse(SOURCES)).content.decode()
    assert '<span style="color:#2e7d32" title="up">&#9679; green</span>' in body
    assert '<span style="color:#c62828" title="down">&#9679; red</span>' in body
    assert "100% of 4" in body
    assert "entered by operators (not polled)" in body


def test_enable_needs_the_permission_and_a_reason_and_is_audited(client):
    stooq = PriceSource.objects.get(name="stooq")
    data = {"action": "enable_sources", "_selected_action": [stooq.pk]}
    client.force_login(staff_with())
    assert "enable_sources" not in client.get(reverse(SOURCES)).content.decode()  # view-only: not offered
    client.force_login(staff_with("change_pricesource"))
    page = client.post(reverse(SOURCES), data)
    assert b"Your name and the reason go into the audit log." in page.content
    assert PriceSource.objects.get(name="stooq").enabled is False  # nothing yet
    done = client.post(reverse(SOURCES), {**data, "confirm": "yes", "reason": "key added"}, follow=True)
    assert "stooq enabled." in messages_of(done)
    event = AuditEvent.objects.get(action="marketdata.source_change", object_id="stooq")
    assert (event.source, event.reason, event.before, event.after) == (
        "admin", "key added", {"enabled": False}, {"enabled": True},
    )  # fmt: skip


def test_test_now_shows_the_parsed_quotes(client, vendors):
    vendors.set(STOOQ_QUOTE, (200, "text/csv", b"Symbol,Date,Time,Close\r\n^NDX,2025-09-08,11:30:00,23123.45\r\n", 0.0))
    vendors.set(STOOQ_CLOSE, stooq_daily({date(2025, 9, 5): "23000.00"}))
    stooq = PriceSource.objects.get(name="stooq")
    client.force_login(staff_with("change_pricesource"))
    with time_machine.travel(datetime(2025, 9, 8, 11, 31, tzinfo=NY), tick=False):
        done = client.post(reverse(SOURCES), {"action": "test_now", "_selected_action": [stooq.pk]}, follow=True)
    shown = messages_of(done)
    assert shown[0].startswith("stooq NDX live quote: 23123.450000 at 2025-09-08 11:30:00 ET, ")
    assert shown[1].startswith("stooq NDX close of 2025-09-05: 23000.000000 at 2025-09-05 00:00:00 ET (a date only)")
    assert AuditEvent.objects.filter(action="marketdata.source_test", object_id="stooq").count() == 2


def test_editing_a_source_goes_through_the_service(client):
    twelvedata = PriceSource.objects.get(name="twelvedata")
    client.force_login(staff_with("change_pricesource"))
    url = reverse("admin:marketdata_pricesource_change", args=[twelvedata.pk])
    form = client.get(url).context["adminform"].form
    data = {**form.initial, "config": '{"close_url": "http://127.0.0.1:18199/x"}', "weight": 3, "timeout_ms": 2500}
    data["enabled"] = "on" if data.get("enabled") else ""
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    twelvedata.refresh_from_db()
    assert (twelvedata.weight, twelvedata.timeout_ms, twelvedata.config) == (
        3, 2500, {"close_url": "http://127.0.0.1:18199/x"},
    )  # fmt: skip
    event = AuditEvent.objects.get(action="marketdata.source_change", object_id="twelvedata")
    assert event.after == {"weight": 3, "timeout_ms": 2500, "config": {"close_url": "http://127.0.0.1:18199/x"}}
    bad = client.post(url, {**data, "timeout_ms": 70000}, follow=True)
    assert "Timeout must be 100-60000 ms. [invalid_timeout]" in messages_of(bad)


def test_ticks_are_browsable(client):
    at = datetime(2025, 9, 8, 10, 0, tzinfo=NY)
    PriceTick.objects.create(symbol="NDX", price=Decimal("23100.5"), source="stooq", ts=at, received_at=at)
    client.force_login(staff_with())
    body = client.get(reverse("admin:marketdata_pricetick_changelist")).content.decode()
    assert "23100.500000" in body and "2025-09-08 10:00:00 ET" in body


def test_the_admin_refuses_a_close_that_has_not_happened_yet(client):
    client.force_login(staff_with("add_officialclose", "change_officialclose"))
    with time_machine.travel(datetime(2025, 9, 8, 15, 0, tzinfo=NY), tick=False):
        response = client.post(
            reverse("admin:marketdata_officialclose_add"),
            {"symbol": "NDX", "date": "2025-09-08", "price": "23100.5", "source": "manual"},
            follow=True,
        )
    assert any("has not happened yet" in m and "[close_not_yet]" in m for m in messages_of(response))
    assert not OfficialClose.objects.exists()


def test_round_and_close_pages_show_the_evidence(client, vendors, users):
    serve(vendors, stooq="23100.50", alphavantage="23100.50", twelvedata="23500.00")
    up, down = users(2)
    with time_machine.travel(datetime(2025, 9, 8, 9, 0, tzinfo=NY), tick=False):
        round_, _ = round_open(code="20250908")
        place_bet(round_, up, "UP", 1_000_000)
        place_bet(round_, down, "DOWN", 1_000_000)
        round_lock(code="20250908")
    with time_machine.travel(datetime(2025, 9, 8, 16, 5, tzinfo=NY), tick=False):
        call_command("settle_round", "--code", "20250908", "--result", "AUTO")
    client.force_login(staff_with())
    round_page = client.get(reverse("admin:rounds_round_change", args=[round_.pk])).content.decode()
    assert "Oracle evidence: close" in round_page
    assert '<td style="color:#c62828">rejected: deviation</td>' in round_page
    assert round_page.count('<td style="color:#2e7d32">accepted</td>') == 5  # 2 for the close, 3 for the previous
    close = OfficialClose.objects.get(date=date(2025, 9, 8))
    close_page = client.get(reverse("admin:marketdata_officialclose_change", args=[close.pk])).content.decode()
    assert "ACCEPTED — 23100.500000 (quorum 2, max deviation 5 bps" in close_page


def test_the_settle_auto_preview_asks_the_sources_first(client, vendors, users):
    serve(vendors, stooq="23100.50", alphavantage="23100.50", twelvedata="23500.00")
    up, down = users(2)
    with time_machine.travel(datetime(2025, 9, 8, 9, 0, tzinfo=NY), tick=False):
        round_, _ = round_open(code="20250908")
        place_bet(round_, up, "UP", 1_000_000)
        place_bet(round_, down, "DOWN", 1_000_000)
        round_lock(code="20250908")
    user = staff_with("settle_round")
    client.force_login(user)
    with time_machine.travel(datetime(2025, 9, 8, 16, 5, tzinfo=NY), tick=False):
        page = client.post(
            reverse("admin:rounds_round_changelist"), {"action": "settle_auto", "_selected_action": [round_.pk]}
        ).content.decode()
    assert "close 23100.500000 (quorum)" in page and "previous 23000.000000 (quorum)" in page
    assert "will be refused" not in page
