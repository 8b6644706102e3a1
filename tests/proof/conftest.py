"""Fixtures of the proof suite: a headless Chromium for the admin, staff roles, threads on PostgreSQL."""

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import close_old_connections, connection

from betting.services import user_create

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STAFF_PASSWORD = "operator-pass-123"  # test-only; MD5 hasher in test settings


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (never `playwright install`: no browser download)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs it (make test and .ci/run do)")
    # Django refuses sync ORM calls when it sees a running event loop; Playwright's sync API runs one
    # in its own greenlet, and the test thread's ORM calls are ours, not async code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def staff_user(*, email: str, perms: list[str], group: str) -> Any:
    """A staff user in `group`, which holds `perms` ("app_label.codename")."""
    user = user_create(email=email, password=STAFF_PASSWORD, is_staff=True)
    role, _ = Group.objects.get_or_create(name=group)
    for perm in perms:
        app_label, codename = perm.split(".")
        role.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    user.groups.add(role)
    return user


def admin_login(page, base_url: str, *, email: str, password: str = STAFF_PASSWORD) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` real threads started together; each closes its own DB connection.

    Returns each thread's result, or the exception it raised.
    """
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def body(index: int) -> None:
        close_old_connections()
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung (deadlock?)"
    return results
