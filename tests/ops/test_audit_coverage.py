"""Every operator command that changes state leaves exactly one audit event (ops commands: test_audit_and_roles)."""

from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from audit.models import AuditEvent
from tests.factories import UserFactory
from withdrawals.services import payout_address_register

pytestmark = pytest.mark.django_db


def test_every_round_and_money_command_leaves_exactly_one_audit_event(settings):
    settings.PAYOUT_SIMULATED_FAILURE_RATE = 0
    user = UserFactory(email="user@example.com")
    steps = [
        (["deposit", "--user", "user@example.com", "--amount", "3000000"], "deposit.credit"),
        (["withdraw", "--user", "user@example.com", "--amount", "500000"], "withdrawal.request"),
        (["process_withdrawals", "--limit", "10"], None),
        (["open_round", "--code", "20250908"], "round.open"),
        (["lock_round", "--code", "20250908", "--reason", "drill"], "round.lock"),
        (["set_close", "--symbol", "NDX", "--date", "2025-09-05", "--price", "21000.5"], None),  # a past close
        (["settle_round", "--code", "20250908", "--result", "VOID", "--reason", "drill"], None),
        (["seed", "--users", "1", "--fund", "1000"], "deposit.credit"),
    ]
    settings.PAYOUT_ADDRESS_COOLING_OFF_HOURS = 0
    with time_machine.travel("2025-09-08 12:00:00+00:00", tick=False):
        # the user's own registered address: the shell's `withdraw` for them is paid without an approval
        payout_address_register(user=user, address="0x" + "ab" * 20, source="api")
        for args, action in steps:
            before = AuditEvent.objects.count()
            call_command(*args, stdout=StringIO())
            new = list(AuditEvent.objects.order_by("id")[before:].values_list("action", "source"))
            assert len(new) == 1, (args, new)
            assert new[0][1] == "cli", (args, new)
            if action:
                assert new[0][0] == action, (args, new)
