"""Reads about rounds: lookups, the current round, settlement previews, verification."""

import re
from datetime import date

from rounds.exceptions import InvalidRoundCode, UnknownRound
from rounds.models import Round

_CODE = re.compile(r"^\d{8}$")


def round_code_parse(*, code: str) -> date:
    """A round code is the trading day as YYYYMMDD; anything else is refused."""
    text = str(code or "").strip()
    if not _CODE.match(text):
        raise InvalidRoundCode(f"Round code must be a date as YYYYMMDD, got {code!r}.")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise InvalidRoundCode(f"Round code {code!r} is not a real date.") from None


def round_get(*, code: str) -> Round:
    round_code_parse(code=code)
    round_ = Round.objects.filter(code=str(code).strip()).first()
    if round_ is None:
        raise UnknownRound(f"No round {code}.")
    return round_


def round_current() -> Round | None:
    """The round bettors see: the open one (earliest, if several are open), else the latest locked one."""
    open_round = Round.objects.filter(status=Round.Status.OPEN).order_by("code").first()
    if open_round is not None:
        return open_round
    return Round.objects.filter(status=Round.Status.LOCKED).order_by("-code").first()
