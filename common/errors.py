"""The error every service raises: a stable machine-readable `code` and a sentence.

Apps subclass it; the DRF exception handler (common.api), the command helper
(common.commands) and the admin helper (common.admin) turn it into a 4xx body,
a CommandError and a red admin message.
"""

from typing import Any


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
