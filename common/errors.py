"""The error every service raises: a stable machine-readable `code` and a sentence.

Apps subclass it; the DRF exception handler (common.api), the command helper
(common.commands) and the admin helper (common.admin) turn it into a 4xx body,
a CommandError and a red admin message.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a name for the checker: common imports no app at run time
    from common.types import User


class ApplicationError(Exception):
    code = "error"
    status = 400

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class InvalidInput(ApplicationError):
    code = "invalid"
    status = 400


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class PermissionDenied(ApplicationError):
    """A caller without the permission its act needs: the one refusal every service raises (403)."""

    code = "permission_denied"
    status = 403


def permission_require(acting_user: Any, permission: str, *, detail: str) -> "User":
    """The first line of a service that needs a staff power: `acting_user` must be staff and hold `permission`.

    `acting_user` None is a caller with no Django user behind it (the shell, the ops token, the beat):
    their authority is the access they already have, so the service decides before calling this
    whether None is allowed there. Returns the user, now known to be a staff person.
    """
    if not (getattr(acting_user, "is_staff", False) and acting_user.has_perm(permission)):
        raise PermissionDenied(detail)
    return acting_user


class ReasonRequired(ApplicationError):
    """A staff act that must say why (a manual settlement, an emergency stop, a restore…) was given no reason."""

    code = "reason_required"
    status = 400


class IdempotencyConflict(ApplicationError):
    """The same Idempotency-Key again with a different request: refused, nothing written (422)."""

    code = "idempotency_conflict"
    status = 422


class InvalidIdempotencyKey(ApplicationError):
    code = "invalid_idempotency_key"
    status = 400
