"""The switches a request reads: once per request, a GET may take its process's read of the last second."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ops.models import OpsSwitch
from ops.selectors import switches_forget
from ops.services import ops_maintenance
from tests.betting.conftest import round_create

pytestmark = pytest.mark.django_db(transaction=True)  # switches_forget runs when the change commits


@pytest.fixture
def reuse(settings):
    settings.SWITCHES_READ_MAX_AGE_SECONDS = 60
    switches_forget()
    yield
    switches_forget()


def _switch_reads(method: str, path: str) -> tuple[int, int]:
    client = APIClient()
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(path, format="json")
    return response.status_code, len([q for q in queries.captured_queries if "ops_switches" in q["sql"]])


def test_gets_reuse_the_processs_read_and_writes_read_afresh(reuse):
    round_create()
    assert _switch_reads("get", "/rounds/current") == (200, 1)
    assert _switch_reads("get", "/rounds/current") == (200, 0)  # the read of a moment ago
    assert _switch_reads("post", "/api/v1/bets")[1] == 1  # a write reads afresh (401 here: no token)


def test_a_switch_changed_in_this_process_is_seen_by_the_next_get(reuse):
    round_create()
    assert _switch_reads("get", "/rounds/current") == (200, 1)
    ops_maintenance(active=True, reason="drill", source="cli")
    assert _switch_reads("get", "/rounds/current") == (503, 1)
    ops_maintenance(active=False, source="cli")
    assert _switch_reads("get", "/rounds/current") == (200, 1)


def test_a_switch_changed_elsewhere_reaches_a_get_once_its_read_is_older_than_max_age(reuse, settings):
    round_create()
    assert _switch_reads("get", "/rounds/current") == (200, 1)
    OpsSwitch.objects.update_or_create(
        name=OpsSwitch.Name.MAINTENANCE, defaults={"active": True, "reason": "other host"}
    )
    assert _switch_reads("get", "/rounds/current") == (200, 0)  # within max_age: the process's read
    settings.SWITCHES_READ_MAX_AGE_SECONDS = 0
    assert _switch_reads("get", "/rounds/current") == (503, 1)
