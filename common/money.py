from decimal import Decimal

MICRO_PER_USDC = 1_000_000


def usdc(amount_u: int) -> str:
    """Display only: 1234567 -> '1.23' (money itself stays in integer micro-USDC)."""
    return f"{Decimal(amount_u) / MICRO_PER_USDC:,.2f}"


def format_usdc(u: int) -> str:
    """Money shown to people: 1234500000 -> '1,234.50 USDC'; a sub-cent amount keeps every digit
    (1234567891 -> '1,234.567891 USDC'), so nothing shown is rounded."""
    sign = "-" if u < 0 else ""
    whole, micro = divmod(abs(u), MICRO_PER_USDC)
    fraction = f"{micro:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole:,}.{fraction} USDC"
