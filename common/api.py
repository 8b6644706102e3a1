"""One DRF exception handler: every error body is {"code", "detail"} (+ "errors")."""

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import ApplicationError


def _first_message(errors: Any) -> str:
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            return message if field in ("non_field_errors", "detail") else f"{field}: {message}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"code": exc.code, "detail": exc.detail, **exc.extra}, status=exc.status)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):  # Django's body limits, read through DRF
        return Response(*bad_request_body(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    # DRF answers only its own APIExceptions (the two Django ones became those above); anything else is a 500.
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": _first_message(exc.detail), "errors": exc.detail}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    return response


def bad_request_body(exc: Exception) -> tuple[dict, int]:
    """The JSON body and status for Django's own refusals of a request (SuspiciousOperation and kin)."""
    if isinstance(exc, RequestDataTooBig):
        return {"code": "body_too_large", "detail": "The request body is larger than the server accepts."}, 413
    if isinstance(exc, TooManyFieldsSent):
        return {"code": "too_many_fields", "detail": "The request has more fields than the server accepts."}, 400
    return {"code": "bad_request", "detail": "The request was refused as malformed."}, 400


MAX_QUERY_INT = 2**31 - 1  # every integer a client may put in a query string fits an int4 and a bigint


def query_int(request, name: str, *, default: int, minimum: int = 0, maximum: int = MAX_QUERY_INT) -> int:
    """A query parameter that must be a plain decimal integer within [minimum, maximum].

    DRF's pagination silently falls back to its default on "abc" or "-1" and passes 2**63 straight
    to the database (a 500 "bigint out of range"); every integer parameter goes through here instead.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or not minimum <= int(text) <= maximum:
        raise ApplicationError(
            f"?{name}= must be a whole number between {minimum} and {maximum}, got {raw[:40]!r}.",
            code="invalid_parameter",
            parameter=name,
        )
    return int(text)


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """limit 1..max_limit and offset 0..MAX_QUERY_INT, else 400 `invalid_parameter` naming the parameter."""

    max_limit = 1000

    def get_limit(self, request: Request) -> int | None:
        if self.default_limit is None:  # no PAGE_SIZE: DRF's own rule (our settings set one)
            return super().get_limit(request)
        return query_int(request, self.limit_query_param, default=self.default_limit, minimum=1, maximum=self.max_limit)

    def get_offset(self, request: Request) -> int:
        return query_int(request, self.offset_query_param, default=0)


def paginated_response(
    *, queryset: QuerySet[Any], serializer_class: type[serializers.BaseSerializer[Any]], request: Request, view: APIView
) -> Response:
    """HackSoft's helper: a limit/offset page of `queryset` through `serializer_class`."""
    paginator = StrictLimitOffsetPagination()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class ErrorSerializer(serializers.Serializer):
    """Every error body: a stable machine-readable `code` and a human `detail` (for the schema)."""

    code = serializers.CharField()
    detail = serializers.CharField()


class AmountField(serializers.IntegerField):
    """A JSON integer of micro-USDC and nothing else: DRF's IntegerField would take "5", 5.0 and true.

    Ranges (positive, within the limits) are the services' job.
    """

    default_error_messages = {"invalid": "A whole number of micro-USDC (a JSON integer) is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
