"""The ops dashboard on the admin index, in a real browser (Debian's Chromium through Playwright).

Issue 15: with an OPEN or SETTLED round the label column shrank to ~29 px (one letter per line), and the
charts had no axes. Here the index is opened with a SETTLED round, then a LOCKED one, then an OPEN one; the
label column stays at least 120 px wide, and each of the four charts (Chart.js, served from our own static
files) has titled axes, ticks and a legend, in the light and the dark theme. Screenshots land in
/tmp/updown-proof/.
"""

import pytest

from betting.services import bet_place
from rounds.services import round_lock, round_open, round_settle
from tests.factories import UserFactory, fund
from tests.proof.conftest import STAFF_PASSWORD, admin_login

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "/tmp/updown-proof"
LABEL_WIDTH_JS = """() => Math.min(...[...document.querySelectorAll('#ops-dashboard th.ops-label')]
    .map(th => th.getBoundingClientRect().width))"""
CHARTS_JS = """() => window.opsDashboardCharts().map(chart => ({
    id: chart.canvas.id,
    x_title: chart.options.scales.x.title.display ? chart.options.scales.x.title.text : '',
    y_title: chart.options.scales.y.title.display ? chart.options.scales.y.title.text : '',
    x_ticks: chart.scales.x.ticks.length,
    y_ticks: chart.scales.y.ticks.map(tick => tick.label),
    legend: chart.legend.legendItems.map(item => item.text),
    tick_colour: chart.options.scales.y.ticks.color,
    height: chart.canvas.getBoundingClientRect().height,
}))"""
BODY_FG_JS = "() => getComputedStyle(document.documentElement).getPropertyValue('--body-fg').trim()"


def _bets(round_code: str, stakes: list[tuple[str, int]]) -> None:
    for side, stake_u in stakes:
        user = UserFactory()
        fund(user, 10_000_000_000)
        bet_place(user=user, side=side, stake_u=stake_u, round_code=round_code)


def _dashboard(page, url: str) -> tuple[float, list[dict], str]:
    page.goto(f"{url}/admin/")
    page.wait_for_function("() => window.opsDashboardCharts && window.opsDashboardCharts().length === 4")
    return page.evaluate(LABEL_WIDTH_JS), page.evaluate(CHARTS_JS), page.locator("#ops-dashboard").inner_text()


def _assert_charts_have_axes(charts: list[dict]) -> None:
    assert [chart["id"] for chart in charts] == [
        "ops-chart-pools",
        "ops-chart-volume",
        "ops-chart-fees",
        "ops-chart-tvl",
    ]
    for chart in charts:
        assert chart["x_title"] and chart["y_title"], chart
        assert "USDC" in chart["y_title"], chart
        assert chart["x_ticks"] >= 2 and len(chart["y_ticks"]) >= 3, chart
        assert len(set(chart["y_ticks"])) == len(chart["y_ticks"]), chart  # a scale, not "0 0 0 0"
        assert chart["legend"] and chart["height"] > 150, chart
    pools, volume, fees, tvl = charts
    assert pools["x_title"] == "Side" and pools["x_ticks"] == 2
    for chart in (volume, fees, tvl):
        assert chart["x_title"] == "Day (America/New_York)"
        assert chart["x_ticks"] >= 5  # not only the first and last day


@pytest.fixture
def superuser():
    user = UserFactory(email="boss@example.com", password=STAFF_PASSWORD, is_staff=True)
    user.is_superuser = True
    user.save()
    return user


def test_dashboard_label_column_and_chart_axes_with_settled_locked_and_open_rounds(live_server, page, superuser):
    requests_elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(live_server.url) else requests_elsewhere.append(request.url),
    )
    admin_login(page, live_server.url, email="boss@example.com")

    # given a SETTLED round only (the state the label column used to collapse in)
    round_open(code="20261221", force=True)
    _bets("20261221", [("UP", 2_611_800), ("UP", 5_000_000), ("DOWN", 8_010_800)])
    round_lock(code="20261221")
    round_settle(code="20261221", result="DOWN")
    page.set_viewport_size({"width": 1400, "height": 1000})
    width, charts, text = _dashboard(page, live_server.url)
    page.screenshot(path=f"{SCREENSHOTS}/dashboard-settled-1400.png", full_page=True)
    assert width >= 120
    assert "20261221 SETTLED (DOWN)" in text
    assert "UP 7.6118 USDC · DOWN 8.0108 USDC · total 15.6226 USDC" in text
    _assert_charts_have_axes(charts)

    # a LOCKED one
    round_open(code="20261222", force=True)
    _bets("20261222", [("UP", 1_000_000)])
    round_lock(code="20261222")
    width, charts, text = _dashboard(page, live_server.url)
    assert width >= 120
    assert "20261222 LOCKED" in text
    _assert_charts_have_axes(charts)

    # an OPEN one, at 1920 px as well
    round_open(code="20261223", force=True)
    _bets("20261223", [("UP", 3_000_000_000), ("DOWN", 1_250_000_000)])
    for viewport in (1400, 1920):
        page.set_viewport_size({"width": viewport, "height": 1000})
        width, charts, text = _dashboard(page, live_server.url)
        page.screenshot(path=f"{SCREENSHOTS}/dashboard-open-{viewport}.png", full_page=True)
        assert width >= 120
        assert "20261223 OPEN" in text and "locks in" in text and " EST" in text
        assert "UP 3,000.00 USDC · DOWN 1,250.00 USDC · total 4,250.00 USDC" in text
        _assert_charts_have_axes(charts)
        assert charts[0]["legend"] == ["Round 20261223 pool"]
        assert charts[0]["y_ticks"][-1].replace(",", "").isdigit()  # USDC with separators, e.g. "3,000"

    assert requests_elsewhere == []  # Chart.js and everything else from our own static files


def test_dashboard_charts_follow_the_dark_theme(live_server, chromium, superuser):
    round_open(code="20261223", force=True)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    try:
        admin_login(page, live_server.url, email="boss@example.com")
        _, charts, _ = _dashboard(page, live_server.url)
        body_fg = page.evaluate(BODY_FG_JS)
        page.screenshot(path=f"{SCREENSHOTS}/dashboard-dark-1400.png", full_page=True)
        _assert_charts_have_axes(charts)
        # the admin's dark text colour, not Chart.js's default dark grey on a dark page
        assert body_fg and body_fg.lower() not in ("#333", "#333333")
        assert {chart["tick_colour"] for chart in charts} == {body_fg}

        # the admin's theme toggle (data-theme on <html>) redraws the charts in the light colours
        page.evaluate("() => document.documentElement.setAttribute('data-theme', 'light')")
        page.wait_for_function("fg => window.opsDashboardCharts()[0].options.scales.y.ticks.color !== fg", arg=body_fg)
        light = page.evaluate(CHARTS_JS)
        assert {chart["tick_colour"] for chart in light} == {page.evaluate(BODY_FG_JS)} != {body_fg}
    finally:
        context.close()
