"""The ops token: `Authorization: Bearer $OPS_TOKEN` for the protected operations endpoints."""

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

OPS_TOKEN_AUTH = "ops-token"


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def ops_token_matches(token: str | None) -> bool:
    expected = settings.OPS_TOKEN
    return bool(expected) and token is not None and hmac.compare_digest(token.encode(), expected.encode())


def ops_request_allowed(request: HttpRequest) -> bool:
    """For plain Django views: the ops token, or a logged-in staff session."""
    if ops_token_matches(bearer_token(request)):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


class OpsTokenAuthentication(authentication.BaseAuthentication):
    """Bearer $OPS_TOKEN. A Bearer header with any other value is refused (401), never ignored."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            return None
        if not ops_token_matches(token):
            raise exceptions.AuthenticationFailed("The ops token is wrong.")
        return AnonymousUser(), OPS_TOKEN_AUTH

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ops"'


class IsOpsOrStaff(permissions.BasePermission):
    message = "Operations endpoints need the ops token or a staff account."

    def has_permission(self, request, view) -> bool:
        if request.auth == OPS_TOKEN_AUTH:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


OPS_AUTHENTICATION = [
    OpsTokenAuthentication,
    authentication.TokenAuthentication,
    authentication.SessionAuthentication,
]


def acting_user(request):
    """The staff user behind the request, or None for the ops token (audited as source "ops-token")."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class OpsTokenScheme(OpenApiAuthenticationExtension):
    """How the API schema (drf-spectacular) describes the ops token."""

    target_class = "ops.auth.OpsTokenAuthentication"
    name = "opsToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer $OPS_TOKEN"}
