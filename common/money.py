"""Money shown to people: USDC with thousands separators, exact to the micro-unit (money itself stays integer u)."""

MICRO_PER_USDC = 1_000_000


def usdc_number(amount_u: int) -> str:
    """Exact, at least two decimals, thousands separators: 2611800 -> '2.6118', 8010800000 -> '8,010.80'."""
    sign = "-" if amount_u < 0 else ""
    whole, micro = divmod(abs(int(amount_u)), MICRO_PER_USDC)
    decimals = f"{micro:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole:,}.{decimals}"


def format_usdc(amount_u: int, *, exact: bool = False) -> str:
    """The one way money is written for people: '8,010.80 USDC'; exact=True adds the u: '8,010.80 USDC
    (8,010,800,000 u)', where the micro-units matter (settlement previews, ledger lines, refusals)."""
    text = f"{usdc_number(amount_u)} USDC"
    return f"{text} ({int(amount_u):,} u)" if exact else text
