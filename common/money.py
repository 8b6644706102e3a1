from decimal import Decimal

MICRO_PER_USDC = 1_000_000


def usdc(amount_u: int) -> str:
    """Display only: 1234567 -> '1.23' (money itself stays in integer micro-USDC)."""
    return f"{Decimal(amount_u) / MICRO_PER_USDC:,.2f}"
