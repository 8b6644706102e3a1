from importlib import import_module

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import bad_request, page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common.api import bad_request_body

APPS = ["betting", "ledger", "rounds", "withdrawals", "marketdata", "ops"]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
for app in APPS:
    app_urls = import_module(f"{app}.urls")
    # Each app: `urlpatterns` live under /api/v1/; `runbook_urlpatterns` are the
    # operating manual's own paths (/health, /rounds/current, /withdrawals, ...).
    urlpatterns.append(path("api/v1/", include((app_urls.urlpatterns, app))))
    urlpatterns.append(path("", include((getattr(app_urls, "runbook_urlpatterns", []), f"{app}-runbook"))))


def not_found(request, exception=None):
    """A path no route matches (e.g. /api/v1/bets/-1): JSON {"code", "detail"} like every API error."""
    if request.path.startswith("/admin/"):
        return page_not_found(request, exception)
    return JsonResponse({"code": "not_found", "detail": f"No such path: {request.path}"}, status=404)


def refused(request, exception=None):
    """Django's own refusals (body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, ...): JSON with a code."""
    if request.path.startswith("/admin/"):
        return bad_request(request, exception)
    body, status = bad_request_body(exception)
    return JsonResponse(body, status=status)


handler404 = not_found
handler400 = refused
