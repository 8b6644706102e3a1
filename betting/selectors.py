from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet

from betting.exceptions import UnknownBet
from betting.models import Bet, User
from common.errors import NotFound


def user_get_by_email(*, email: str) -> User:
    user = User.objects.filter(email__iexact=(email or "").strip()).first()
    if user is None:
        raise NotFound(f"No user with email {email!r}.", code="unknown_user")
    return user


def user_get(*, user_id: Any) -> User:
    try:
        user = User.objects.filter(pk=user_id).first()
    except (ValueError, TypeError, ValidationError):  # a malformed UUID is just an unknown user
        user = None
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.", code="unknown_user")
    return user


def _bets():
    # `round_code` instead of a join per row in the serializer: the API shows the round by its code.
    return Bet.objects.annotate(round_code=F("round__code"))


def bet_list(*, user: User, round_code: str | None = None) -> QuerySet[Bet]:
    """The user's own bets, newest first, optionally of one round."""
    bets = _bets().filter(user_id=user.pk)
    if round_code:
        bets = bets.filter(round__code=round_code)
    return bets.order_by("-id")


def bet_get(*, user: User, bet_id: Any) -> Bet:
    """One of the user's own bets; another user's bet is as unknown as a missing one (404, not 403)."""
    try:
        bet = _bets().filter(user_id=user.pk, pk=int(bet_id)).first()
    except (TypeError, ValueError, OverflowError):
        bet = None
    if bet is None:
        raise UnknownBet(f"No bet {bet_id} of yours.")
    return bet


def bet_by_idempotency_key(*, user_id: Any, idempotency_key: str) -> Bet | None:
    return _bets().filter(user_id=user_id, idempotency_key=idempotency_key).first()
