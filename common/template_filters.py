"""Template filters every template has (settings TEMPLATES "builtins"): money as people read it.

{{ amount_u|usdc }} -> '8,010.80 USDC'; {{ amount_u|usdc_exact }} -> '8,010.80 USDC (8,010,800,000 u)'.
"""

from django import template

from common.money import format_usdc

register = template.Library()


@register.filter
def usdc(amount_u):
    return "-" if amount_u is None or amount_u == "" else format_usdc(int(amount_u))


@register.filter
def usdc_exact(amount_u):
    return "-" if amount_u is None or amount_u == "" else format_usdc(int(amount_u), exact=True)
