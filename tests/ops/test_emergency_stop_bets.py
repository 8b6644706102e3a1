"""The runbook drill: `emergency_stop on --reason drill`, a bet refused, `emergency_stop off`, a bet accepted."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from betting.models import Bet
from rounds.services import round_open


@pytest.mark.money
@pytest.mark.django_db
def test_emergency_stop_refuses_bets_through_the_api_and_is_audited(api, funded_bettor, new_key):
    code = (timezone.now() + dt.timedelta(days=7)).strftime("%Y%m%d")
    round_open(code=code, force=True)
    client = api(funded_bettor)
    bet = {"side": "UP", "stake_u": 1_000_000, "round": code}

    # given the emergency stop is on
    call_command("emergency_stop", "on", "--reason", "drill")

    # when a bettor places a bet
    refused = client.post("/api/v1/bets", bet, format="json", HTTP_IDEMPOTENCY_KEY=new_key())

    # then it is refused with code emergency_stop and nothing is written
    assert 400 <= refused.status_code < 500
    assert refused.json()["code"] == "emergency_stop"
    assert "drill" in refused.json()["detail"]
    assert Bet.objects.count() == 0

    # when the stop is turned off, the same bet goes through
    call_command("emergency_stop", "off")
    accepted = client.post("/api/v1/bets", bet, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert accepted.status_code == 201
    assert Bet.objects.count() == 1
    # and both switches are in the audit log
    actions = list(AuditEvent.objects.filter(action__startswith="ops.").values_list("action", flat=True))
    assert sorted(actions) == ["ops.emergency_stop.off", "ops.emergency_stop.on"]
