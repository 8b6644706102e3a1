"""Tiny server-side SVG charts for the admin dashboard: no JavaScript, no CDN."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from common.money import usdc


def bar_chart(points: list[tuple[str, int]], *, title: str, width: int = 420, height: int = 120) -> SafeString:
    """One bar per point (label, amount_u); the tallest bar fills the height. Amounts shown in USDC on hover."""
    pad_top, pad_bottom = 18, 16
    inner = height - pad_top - pad_bottom
    top = max((value for _, value in points), default=0)
    bottom = min(0, min((value for _, value in points), default=0))
    span = (top - bottom) or 1
    step = width / max(len(points), 1)
    zero_y = pad_top + inner * top / span
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = abs(value) * inner / span
        y = zero_y - bar_height if value >= 0 else zero_y
        bars.append(
            f'<rect x="{index * step + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{max(bar_height, 0.5):.1f}" fill="{"#417690" if value >= 0 else "#ba2121"}">'
            f"<title>{escape(label)}: {usdc(value)} USDC</title></rect>"
        )
    first = escape(points[0][0]) if points else ""
    last = escape(points[-1][0]) if points else ""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="ops-chart">'
        f'<text x="0" y="12" font-size="12" font-weight="bold">{escape(title)}</text>'
        f'<text x="{width}" y="12" font-size="11" text-anchor="end">max {usdc(top)} USDC</text>'
        f'<line x1="0" y1="{zero_y:.1f}" x2="{width}" y2="{zero_y:.1f}" stroke="#999" stroke-width="0.5"/>'
        + "".join(bars)
        + f'<text x="0" y="{height - 2}" font-size="10">{first}</text>'
        f'<text x="{width}" y="{height - 2}" font-size="10" text-anchor="end">{last}</text>'
        "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - every interpolated text is escaped above
