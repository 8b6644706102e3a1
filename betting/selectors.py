from typing import Any

from django.core.exceptions import ValidationError

from betting.models import User
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
