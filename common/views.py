"""Django's last-resort error pages (config.urls handler400/403/404/500), the same with DEBUG on or off.

API and runbook paths answer JSON {"code", "detail"} like every API error; the admin keeps Django's
plain HTML pages (no traceback, paths or settings: those only ever come from the technical page that
DEBUG=true opts into).
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from common.api import bad_request_body


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith("/admin/")


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's own refusals (body over DATA_UPLOAD_MAX_MEMORY_SIZE -> 413, too many fields, ...)."""
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    body, status = bad_request_body(exception)
    return JsonResponse(body, status=status)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"code": "permission_denied", "detail": "You may not do this."}, status=403)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """A path no route matches (e.g. /api/v1/bets/-1)."""
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"code": "not_found", "detail": f"No such path: {request.path}"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """An uncaught exception: logged by Django (django.request) with its traceback; the client gets a code."""
    if _is_admin(request):
        return defaults.server_error(request)
    return JsonResponse({"code": "server_error", "detail": "Internal error; it has been logged."}, status=500)
