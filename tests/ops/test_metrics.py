import re

import pytest

from ledger.selectors import tvl_get
from ops import metrics
from ops.services import ops_emergency_stop
from rounds.models import Round
from tests.factories import UserFactory, fund
from tests.ops.conftest import make_round
from withdrawals.services import withdrawal_request


def sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


@pytest.mark.django_db
def test_metrics_tvl_equals_the_tvl_selector(client, funded_bettor):
    # given cash, a pending withdrawal and an open round
    withdrawal_request(user=funded_bettor, amount_u=2_500_000, source="api")
    fund(UserFactory(), 7_000_000)
    make_round("20250908", up_u=3_000_000, down_u=1_000_000)
    tvl = tvl_get()

    # when Prometheus scrapes
    text = client.get("/metrics").content.decode()

    # then the gauges are the tvl numbers, under both names
    assert (tvl.cash_u, tvl.pending_withdrawals_u) == (104_500_000, 2_500_000)
    for prefix in ("betting_tvl", "tvl"):
        assert sample(text, f"{prefix}_locked_u") == tvl.locked_u
        assert sample(text, f"{prefix}_cash_u") == 104_500_000
        assert sample(text, f"{prefix}_pending_withdrawals_u") == 2_500_000
    assert sample(text, "betting_round_status", '{state="OPEN"}') == 1
    assert sample(text, "betting_round_status", '{state="LOCKED"}') == 0
    assert sample(text, "betting_round_pool_u", '{side="UP"}') == 3_000_000
    assert sample(text, "betting_round_pool_u", '{side="DOWN"}') == 1_000_000
    assert sample(text, "betting_ledger_unbalanced_batches") == 0
    assert sample(text, "betting_emergency_stop_active") == 0
    assert sample(text, "betting_circuit_breaker_open") == 0
    assert sample(text, "betting_beat_heartbeat_age_seconds") == -1
    # django-prometheus's own request metrics are there too
    assert "django_http_requests_total_by_method_total" in text


@pytest.mark.django_db
def test_metrics_show_the_emergency_stop_and_counters(client):
    ops_emergency_stop(active=True, reason="drill", source="cli")
    before = client.get("/metrics").content.decode()
    accepted = _value_or_zero(before, "betting_bets_accepted_total", '{side="UP"}')
    rejected = _value_or_zero(before, "betting_bets_rejected_total", '{reason="emergency_stop"}')

    metrics.bet_accepted("UP")
    metrics.bet_rejected("emergency_stop")
    metrics.settlement_observed(1.5)

    text = client.get("/metrics").content.decode()
    assert sample(text, "betting_emergency_stop_active") == 1
    assert sample(text, "betting_bets_accepted_total", '{side="UP"}') == accepted + 1
    assert sample(text, "betting_bets_rejected_total", '{reason="emergency_stop"}') == rejected + 1
    assert "betting_settlement_duration_seconds_count" in text


def _value_or_zero(text, name, labels):
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.django_db
def test_no_user_or_round_code_labels(client, funded_bettor):
    make_round("20250908", status=Round.Status.OPEN)
    metrics.bet_rejected(f"user {funded_bettor.email}")  # not an error code: counted as "other"
    text = client.get("/metrics").content.decode()
    assert sample(text, "betting_bets_rejected_total", '{reason="other"}') >= 1
    assert "20250908" not in text
    assert str(funded_bettor.pk) not in text
    assert funded_bettor.email.split("@")[0] not in text


@pytest.mark.django_db
def test_metrics_need_the_token_when_set(client, ops_token):
    refused = client.get("/metrics")
    assert (refused.status_code, refused.json()["code"]) == (401, "not_authenticated")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {ops_token}").status_code == 200
