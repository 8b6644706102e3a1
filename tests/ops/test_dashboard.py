import json

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

    assert '<strong>20250908</strong> <span class="ops-status">OPEN</span>' in html
    assert "UP 3.00 USDC · DOWN 1.00 USDC · total 4.00 USDC" in html
    assert "cash 12.50 USDC" in html
    assert '<span class="ops-on">ON</span> — drill' in html
    assert html.count('class="ops-chart"') == 4
    for canvas in ("ops-chart-pools", "ops-chart-volume", "ops-chart-fees", "ops-chart-tvl"):
        assert f'<canvas id="{canvas}"' in html
    assert '<script src="/static/ops/vendor/chartjs/chart.umd.min.js"></script>' in html
    data = json.loads(html.split('<script id="ops-chart-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["days"]) == 30 and data["tvl_u"][-1] == 12_500_000  # today's TVL, in u
    assert data["round"] == {"code": "20250908", "up_u": 3_000_000, "down_u": 1_000_000}
    assert 'id="ops-price-feed"' in html  # the place the price feed's freshness goes (issue 11)
    assert "cdn" not in html.lower() and '<script src="http' not in html


@pytest.mark.django_db
def test_vendored_chartjs_is_served_from_our_static_files_with_its_licence(client):
    from django.contrib.staticfiles import finders

    script = finders.find("ops/vendor/chartjs/chart.umd.min.js")
    licence = finders.find("ops/vendor/chartjs/LICENSE.md")
    assert script and licence
    with open(script) as handle:
        assert "Chart.js v4.6.1" in handle.read(300)
    with open(licence) as handle:
        assert "The MIT License" in handle.read()


@pytest.mark.django_db
def test_tvl_by_day_ends_at_current_tvl():
    import datetime as dt

    from django.utils import timezone

    from ledger.selectors import tvl_get
    from marketdata.selectors import market_timezone
    from ops.reports import tvl_by_day

    fund(UserFactory(), 7_000_000)
    today = timezone.localdate(timezone=market_timezone())  # the charts count New York days
    rows = tvl_by_day(start=today - dt.timedelta(days=2), end=today)
    assert [value for _, value in rows] == [0, 0, 7_000_000]
    tvl = tvl_get()
    assert rows[-1][1] == tvl.cash_u + tvl.locked_u + tvl.pending_withdrawals_u
