"""The command helper: services' ApplicationErrors become a CommandError sentence."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError

from common.errors import ApplicationError


@contextmanager
def command_errors() -> Iterator[None]:
    try:
        yield
    except ApplicationError as exc:
        raise CommandError(f"{exc.detail} [{exc.code}]") from exc


def parse_amount_u(value: str, *, allow_zero: bool = False) -> int:
    """Amounts on the command line are whole micro-USDC: digits only."""
    text = str(value).strip()
    if not text.isdigit():
        raise CommandError(f"Amount must be a whole number of micro-USDC, got {value!r}.")
    amount_u = int(text)
    if amount_u == 0 and not allow_zero:
        raise CommandError("Amount must be greater than zero.")
    return amount_u
