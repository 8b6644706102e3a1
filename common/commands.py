"""The command helper: services' ApplicationErrors become a CommandError sentence."""

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
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
    if not (text.isascii() and text.isdigit()):
        raise CommandError(f"Amount must be a whole number of micro-USDC, got {value!r}.")
    if len(text) > 30:  # int() refuses 4300+ digits with a ValueError; no amount is anywhere near this
        raise CommandError(f"Amount must not exceed {settings.MAX_AMOUNT_U} u, got {len(text)} digits.")
    amount_u = int(text)
    if amount_u == 0 and not allow_zero:
        raise CommandError("Amount must be greater than zero.")
    return amount_u


def bounded_int(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse `type=` for an integer option within [minimum, maximum].

    `type=int` takes -5 and 2**63 and the database answers with a traceback ("bigint out of range",
    a negative slice); this refuses them while parsing: a CommandError sentence from call_command,
    argparse's usage error (exit 2, no traceback) from the shell.
    """

    def parse(text: str) -> int:
        value = str(text).strip()
        digits = value[1:] if value[:1] == "-" else value
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 20 or not minimum <= int(value) <= maximum:
            raise argparse.ArgumentTypeError(f"must be a whole number between {minimum} and {maximum}, got {text!r}")
        return int(value)

    parse.__name__ = "bounded int"  # argparse names the type in its message
    return parse
