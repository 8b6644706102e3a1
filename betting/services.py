import secrets

from django.db import transaction

from betting.models import User
from common.errors import Conflict
from ledger.services import account_ensure_user_cash


def user_create(*, email: str, password: str | None = None, is_staff: bool = False) -> User:
    """A bettor (or staff user) with the cash account every bettor has."""
    email = (email or "").strip().lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise Conflict(f"A user with email {email!r} already exists.", code="email_taken")
        user = User.objects.create_user(email=email, password=password or secrets.token_urlsafe(12), is_staff=is_staff)
        account_ensure_user_cash(user=user)
    return user
