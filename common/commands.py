"""Command helpers: services' ApplicationErrors become a CommandError sentence; who is acting (`--actor`)."""

import argparse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from common.errors import ApplicationError
from common.money import format_usdc
from common.types import User


@contextmanager
def command_errors() -> Iterator[None]:
    try:
        yield
    except ApplicationError as exc:
        raise CommandError(f"{exc.detail} [{exc.code}]") from exc


def parse_amount_u(value: str, *, allow_zero: bool = False) -> int:
    """Amounts on the command line are whole micro-USDC: digits only."""
    text = str(value).strip()
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise CommandError(f"Amount must be positive (micro-USDC, 1000000 = 1 USDC), got {value!r}. [invalid_amount]")
    if not (text.isascii() and text.isdigit()):
        raise CommandError(
            f"Amount must be a whole number of micro-USDC (1000000 = 1 USDC), got {value!r}. [invalid_amount]"
        )
    if len(text) > 30:  # int() refuses 4300+ digits with a ValueError; no amount is anywhere near this
        raise CommandError(
            f"Amount must not exceed {format_usdc(settings.MAX_AMOUNT_U, exact=True)}, got {len(text)} digits. "
            "[invalid_amount]"
        )
    amount_u = int(text)
    if amount_u == 0 and not allow_zero:
        raise CommandError("Amount must be greater than zero. [invalid_amount]")
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


def add_actor_argument(parser: argparse.ArgumentParser) -> None:
    """`--actor EMAIL` on a command that changes state: who is acting, as a staff account.

    The service then checks that person's permission, and the audit row names them. Without it
    the caller is the shell itself (its access is the authority) and the audit row records the
    OS user that ran the command (audit.services.audit_record, source "cli").
    """
    parser.add_argument(
        "--actor",
        default="",
        metavar="EMAIL",
        help="act as this staff account: its permission is checked and the audit log names it "
        "(default: the shell, recorded as the OS user)",
    )


def actor_from_options(options: Mapping[str, Any]) -> User | None:
    """The user `--actor` names (case-insensitive email), None without it; an unknown email is a CommandError."""
    email = str(options.get("actor") or "").strip()
    if not email:
        return None
    user = get_user_model().objects.filter(email__iexact=email).first()
    if user is None:
        raise CommandError(f"--actor {email!r} is not the email of any account; nothing changed.")
    return user
