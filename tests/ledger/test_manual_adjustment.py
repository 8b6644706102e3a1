import pytest
from django.contrib.auth.models import Group, Permission

from audit.models import AuditEvent
from common.errors import PermissionDenied, ReasonRequired
from ledger.models import Account, LedgerEntry
from ledger.selectors import account_balance_u
from ledger.services import ledger_manual_adjust
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.money, pytest.mark.django_db]


@pytest.fixture
def finance_user():
    user = UserFactory(email="finance@example.com", is_staff=True)
    group, _ = Group.objects.get_or_create(name="finance-test")
    group.permissions.add(
        Permission.objects.get(codename="manual_adjust"), Permission.objects.get(codename="view_account")
    )
    user.groups.add(group)
    return user


def test_credit_takes_the_house_below_zero_and_is_audited(finance_user):
    alice = UserFactory()
    posted = ledger_manual_adjust(
        user=alice,
        amount_u=1_500_000,
        direction="credit",
        reason="goodwill for outage",
        acting_user=finance_user,
        source="cli",
        idempotency_key="adj-1",
    )
    assert account_balance_u(code=Account.user_cash_code(alice.pk)) == 1_500_000
    assert account_balance_u(code=Account.HOUSE) == -1_500_000
    event = AuditEvent.objects.get(action="ledger.manual_credit")
    assert (event.actor, event.reason, event.before, event.after["balance_u"]) == (
        finance_user,
        "goodwill for outage",
        {"balance_u": 0},
        1_500_000,
    )
    again = ledger_manual_adjust(
        user=alice,
        amount_u=1_500_000,
        direction="credit",
        reason="goodwill for outage",
        acting_user=finance_user,
        source="cli",
        idempotency_key="adj-1",
    )
    assert again.batch.pk == posted.batch.pk
    assert AuditEvent.objects.count() == 1
    assert_ledger_invariants()


def test_debit_cannot_overdraw_and_needs_reason_and_permission(finance_user):
    alice = UserFactory()
    fund(alice, 100)
    common = {"user": alice, "source": "cli", "idempotency_key": "adj-2"}
    with pytest.raises(ReasonRequired, match="reason"):
        ledger_manual_adjust(amount_u=50, direction="debit", reason=" ", acting_user=finance_user, **common)
    with pytest.raises(PermissionDenied, match="permission"):
        ledger_manual_adjust(amount_u=50, direction="debit", reason="fix", acting_user=UserFactory(), **common)
    with pytest.raises(Exception, match="Insufficient funds"):
        ledger_manual_adjust(amount_u=101, direction="debit", reason="fix", acting_user=finance_user, **common)
    assert LedgerEntry.objects.count() == 2
    assert AuditEvent.objects.count() == 0


def test_admin_action_asks_then_posts_once(client, finance_user):
    alice = UserFactory()
    account = Account.objects.get(code=Account.user_cash_code(alice.pk))
    client.force_login(finance_user)
    url = "/admin/ledger/account/"
    form = client.post(url, {"action": "manual_adjust", "_selected_action": [account.pk]})
    assert form.status_code == 200
    assert b"Confirm and post" in form.content
    body = {
        "action": "manual_adjust",
        "_selected_action": [account.pk],
        "confirm": "yes",
        "direction": "credit",
        "amount_u": "2500000",
        "reason": "promo credit",
        "idempotency_key": "form-key-1",
    }
    assert client.post(url, body).status_code == 302
    assert client.post(url, body).status_code == 302  # a double submit posts once
    assert account_balance_u(code=account.code) == 2_500_000
    assert AuditEvent.objects.filter(action="ledger.manual_credit", source="admin", actor=finance_user).count() == 1
    assert_ledger_invariants()


def test_admin_action_is_hidden_without_the_permission(client):
    viewer = UserFactory(email="auditor@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client.force_login(viewer)
    page = client.get("/admin/ledger/account/")
    assert page.status_code == 200
    assert b"manual_adjust" not in page.content
