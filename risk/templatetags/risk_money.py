"""Display of money and shares on the risk pages: USDC with separators, the exact u beside it."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from common.money import usdc_number

register = template.Library()


@register.filter
def usdc_u(amount_u: int | None) -> SafeString | str:
    """'1,234.57 USDC' with the exact amount in u underneath (small)."""
    if amount_u is None:
        return "-"
    return format_html('{} USDC<br><small class="quiet">{} u</small>', usdc_number(amount_u), f"{amount_u:,}")


@register.filter
def bps_percent(bps: int) -> str:
    return f"{bps / 100:.2f} %"


@register.filter
def usdc_inline(amount_u: int | None) -> str:
    return "-" if amount_u is None else f"{usdc_number(amount_u)} USDC ({amount_u:,} u)"
