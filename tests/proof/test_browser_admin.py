"""The admin driven in a real browser (headless Chromium via Playwright) against a live server."""

import pytest

from tests.proof.conftest import admin_login, staff_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "/tmp/updown-proof"


def test_operator_logs_into_the_admin_and_browses_rounds(live_server, page):
    # given
    staff_user(email="operator@example.com", perms=["rounds.view_round"], group="operator")
    # when
    admin_login(page, live_server.url, email="operator@example.com")
    # then
    assert page.locator("#site-name").count() == 1
    assert "Log out" in page.content() or page.locator("#logout-form").count() == 1
    page.screenshot(path=f"{SCREENSHOTS}/admin-index.png", full_page=True)
