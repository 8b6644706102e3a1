"""Log context: every line can name the request, the user, the round and the bet it is about.

`RequestContextMiddleware` binds a request id (the client's X-Request-ID when it is sane, else a new one,
echoed in the response) and the request; services pass `extra={"round": code}` / `extra={"bet": id}` where
they know them. `ContextFilter` copies all of it onto each record (the user once authentication has resolved
it: a session in the middleware, a token in the API view), so `LOG_FORMAT=json` (python-json-logger) gives one
JSON object a line with `request_id`, `user`, `round` and `bet`, and the plain format appends
`[request_id user]` when there is a request.
"""

import contextvars
import logging
import re
import uuid
from typing import Any

import pythonjsonlogger.json
from django.utils.functional import SimpleLazyObject, empty

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("request", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _user_label(request: Any) -> str | None:
    """The request's user if authentication already resolved it; never triggers a query of its own."""
    user = getattr(request, "__dict__", {}).get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "email", None) or str(user.pk)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        fields["request_id"] = fields.get("request_id") or _request_id.get()
        fields["user"] = fields.get("user") or _user_label(_request.get())
        fields.setdefault("round", None)
        fields.setdefault("bet", None)
        context = " ".join(str(value) for value in (fields["request_id"], fields["user"]) if value)
        fields["context"] = f" [{context}]" if context else ""
        return True


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        id_token, request_token = _request_id.set(request_id), _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(id_token)
            _request.reset(request_token)
        response["X-Request-ID"] = request_id
        return response


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """python-json-logger's formatter without the plain format's `context` suffix (its fields are there already)."""

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        log_record.pop("context", None)
