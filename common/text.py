"""Small wording helpers for what people read (admin messages, command output)."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """plural(1, "winning bet") -> '1 winning bet'; plural(2_500, "bet") -> '2,500 bets'."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"
