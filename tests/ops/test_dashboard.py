import pytest

from ops.services import ops_emergency_stop
from tests.factories import UserFactory, fund
from tests.ops.conftest import make_round


@pytest.mark.django_db
def test_admin_index_shows_round_tvl_switches_and_charts_without_cdn(client):
    admin_user = UserFactory(is_staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    fund(UserFactory(), 12_500_000)
    make_round("20250908", up_u=3_000_000, down_u=1_000_000)
    ops_emergency_stop(active=True, reason="drill", source="cli")
    client.force_login(admin_user)

    html = client.get("/admin/").content.decode()

    assert "<strong>20250908</strong> OPEN" in html
    assert "pools UP 3.00 / DOWN 1.00 USDC (total 4.00)" in html
    assert "Cash 12.50" in html
    assert "ON</strong> — drill" in html
    assert html.count('class="ops-chart"') == 3
    assert "Daily volume (30 days)" in html and "Fees (30 days)" in html and "TVL at end of day" in html
    assert "12.50 USDC</title>" in html  # today's TVL bar
    assert "cdn" not in html.lower() and '<script src="http' not in html


@pytest.mark.django_db
def test_tvl_by_day_ends_at_current_tvl():
    import datetime as dt

    from django.utils import timezone

    from ledger.selectors import tvl_get
    from ops.reports import tvl_by_day

    fund(UserFactory(), 7_000_000)
    today = timezone.localdate()
    rows = tvl_by_day(start=today - dt.timedelta(days=2), end=today)
    assert [value for _, value in rows] == [0, 0, 7_000_000]
    tvl = tvl_get()
    assert rows[-1][1] == tvl.cash_u + tvl.locked_u + tvl.pending_withdrawals_u
