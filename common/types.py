"""Type names every room may use without importing another room's models.

`User` is the account model `AUTH_USER_MODEL` names (betting.User). For the checker it is that
model: django-stubs resolves `django.contrib.auth.models._User` through the setting. At run time
annotations only need a class, and the abstract base is the honest one a room may name.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import _User as User
else:
    from django.contrib.auth.base_user import AbstractBaseUser as User

__all__ = ["User"]
