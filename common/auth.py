"""Who is logging in, from where, and what a locked-out client is told (django-axes' hooks).

One rule for the client address, shared by the login throttle, django-axes and DRF's own throttles
(REST_FRAMEWORK["NUM_PROXIES"]): X-Forwarded-For counts only as far as TRUSTED_PROXY_COUNT proxies of
ours wrote it.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from rest_framework.throttling import ScopedRateThrottle

LOCKOUT_MESSAGE = "Too many failed logins for this account or from this address; try again later."


def client_ip(request: HttpRequest) -> str | None:
    """The address our outermost proxy saw, or REMOTE_ADDR when no proxy is trusted.

    Each proxy appends the address it received the request from, so with N proxies of ours the N-th
    entry from the right is the client; anything left of it was written by the client and is ignored.
    This is DRF's SimpleRateThrottle.get_ident rule; unlike it, a hop that is not an IP address (a
    misconfigured proxy count lets the client write it) falls back to REMOTE_ADDR, because axes stores
    the address in an IP column and PostgreSQL would refuse the text with a 500.
    """
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote_addr
    hops = [hop.strip() for hop in forwarded.split(",")]
    candidate = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr


class ClientScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle keyed by client_ip: the same client as axes sees, never client-written text."""

    def get_ident(self, request) -> str:
        return client_ip(request) or ""


def login_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The account a login names, as one key whatever its spelling.

    The admin form posts `username`, the API `email` (USERNAME_FIELD); accounts are found by
    case-insensitive email, so "Victim@Example.com" must count against the same lockout as
    "victim@example.com".
    """
    source = credentials if credentials else getattr(request, "data", None) or request.POST
    value = source.get("email") or source.get("username")
    return value.strip().lower() if isinstance(value, str) else None


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """A locked-out login: JSON {"code": "locked_out"} for the API, a plain page for the admin form.

    429 either way; never the password form again (which would invite more guesses).
    """
    if request.path.startswith("/admin/"):
        body = f"<!doctype html><title>Locked out</title><h1>Locked out</h1><p>{escape(LOCKOUT_MESSAGE)}</p>"
        return HttpResponse(body, status=429)
    return JsonResponse({"code": "locked_out", "detail": LOCKOUT_MESSAGE}, status=429)
