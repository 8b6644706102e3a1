import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.db.models.signals import post_migrate
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ledger.selectors import ledger_audit
from tests.factories import UserFactory, fund


def _allow_truncate_in_test_flush() -> None:
    """The money tables refuse TRUNCATE (common.truncate_guard) unless the session opts in.

    Django's flush between transactional tests TRUNCATEs every table on PostgreSQL; only that flush,
    inside its own transaction (SET LOCAL), opts in. Everything else in the tests sees the guard.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    from common.truncate_guard import ALLOW_SETTING

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return flush(self, [f"SET LOCAL {ALLOW_SETTING} = 'on'", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush


_allow_truncate_in_test_flush()


def _system_rows_after_test_flush(sender, using="default", **kwargs) -> None:
    """Django's flush between transactional tests empties every table, the rows the data migrations made
    included (switches, system accounts), then sends post_migrate without a `plan`. Only then are the
    rows made again, by the data migrations' own functions, so the tests see what a migrated database has.
    A real migrate (it sends a `plan`) is left alone: there the migrations made them, or took them away.
    """
    import importlib

    from django.apps import apps

    if "plan" in kwargs or sender.label != "ops":
        return
    importlib.import_module("ledger.migrations.0004_system_accounts").system_accounts_create(apps, None)
    importlib.import_module("ops.migrations.0006_switch_rows").switch_rows_create(apps, None)
    importlib.import_module("marketdata.migrations.0003_source_presets").presets_create(apps, None)


post_migrate.connect(_system_rows_after_test_flush, dispatch_uid="tests_system_rows_after_flush")


def pytest_report_header(config):
    if getattr(settings, "TEST_DB", "sqlite") == "postgres" and not settings.POSTGRES_UNAVAILABLE:
        from config.test_postgres import POSTGRES_FOR_TESTS

        return f"database: PostgreSQL from {POSTGRES_FOR_TESTS['source']} ({POSTGRES_FOR_TESTS['url']})"
    if getattr(settings, "POSTGRES_UNAVAILABLE", ""):
        return f"database: *** PostgreSQL UNAVAILABLE, PostgreSQL run SKIPPED: {settings.POSTGRES_UNAVAILABLE} ***"
    return "database: SQLite"


def pytest_collection_modifyitems(config, items):
    if getattr(settings, "POSTGRES_UNAVAILABLE", ""):
        skip = pytest.mark.skip(reason=f"PostgreSQL unavailable (not CI): {settings.POSTGRES_UNAVAILABLE}")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _postgres_only(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run `make test-postgres` (SQLite cannot show a race)")


@pytest.fixture(autouse=True)
def _kpi_counters_fresh():
    """Each test starts with no KPI counts (ops.kpi: the shared cache, this process's pending counts)."""
    from django.core.cache import cache

    from ops import kpi

    cache.clear()
    kpi._pending.clear()
    yield


@pytest.fixture
def bettor(db):
    return UserFactory()


@pytest.fixture
def funded_bettor(db):
    user = UserFactory()
    fund(user, 100_000_000)
    return user


def api_client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated with that user's token."""
    return api_client_for


@pytest.fixture
def new_key():
    return lambda: str(uuid.uuid4())


def assert_ledger_invariants() -> None:
    """Σ entries = 0, every batch and ref = 0, cached = Σ entries, nothing protected < 0."""
    report = ledger_audit()
    assert report.global_sum_u == 0
    assert report.unbalanced_batches == []
    assert report.unbalanced_refs == []
    assert report.balance_mismatches == []
    assert report.negative_accounts == []


@pytest.fixture(autouse=True)
def _risk_limits_fresh():
    """Every test starts from its own database's limits: no process-local snapshot carried over."""
    from risk.selectors import limits_snapshot_forget

    limits_snapshot_forget()
    yield
    limits_snapshot_forget()
