import pytest

from marketdata.stub_vendors import StubVendors, point_presets_at
from tests.rounds.conftest import users  # noqa: F401 (the fixture, for the round tests here)


@pytest.fixture
def stub():
    server = StubVendors()
    yield server
    server.stop()


@pytest.fixture
def vendors(db, stub, monkeypatch):
    """The three presets, enabled, pointed at the stub, with their API keys in the environment."""
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "av-test-key")
    monkeypatch.setenv("TWELVEDATA_API_KEY", "td-test-key")
    point_presets_at(stub)
    return stub
