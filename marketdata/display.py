"""HTML for the admin pages that show close evidence (marketdata's own and the rounds')."""

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from marketdata.selectors import market_timezone


def _ny(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(market_timezone()).strftime("%Y-%m-%d %H:%M:%S ET (America/New_York)")


def evidence_html(evidence: dict | None) -> SafeString:
    """One close's latest quorum check: the verdict, then a row per source (accepted in green, rejected in red)."""
    if evidence is None:
        return mark_safe("<p>No price source was asked (a close entered by hand, or none yet).</p>")
    head = format_html(
        "<p><strong>{}</strong> {} — {} (quorum {}, max deviation {} bps, checked {}, {} check(s) in all)</p>",
        evidence["date"],
        evidence["outcome"],
        evidence["price"] or evidence["reason"],
        evidence["quorum"],
        evidence["max_deviation_bps"],
        _ny(evidence["checked_at"]),
        evidence["checks"],
    )
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td style="color:{}">{}</td><td>{}</td>'
        "<td><code>{}</code></td><td>{}</td></tr>",
        (
            (
                q["source"],
                q["price"] or "-",
                _ny(q["ts"]),
                "#2e7d32" if q["accepted"] else "#c62828",
                "accepted" if q["accepted"] else f"rejected: {q['reason']}",
                q["detail"],
                q["payload_sha256"][:16] or "-",
                "-" if q["latency_ms"] is None else f"{q['latency_ms']} ms",
            )
            for q in evidence["quotes"]
        ),
    )
    return format_html(
        "{}<table><thead><tr><th>source</th><th>price</th><th>timestamp</th><th>verdict</th><th>detail</th>"
        "<th>sha256 of the answer</th><th>latency</th></tr></thead><tbody>{}</tbody></table>",
        head,
        rows,
    )
