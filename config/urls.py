from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

APPS = ["betting", "ledger", "rounds", "withdrawals", "marketdata", "risk", "ops"]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
for app in APPS:
    app_urls = import_module(f"{app}.urls")
    # Each app: `urlpatterns` live under /api/v1/; `runbook_urlpatterns` are the
    # operating manual's own paths (/health, /rounds/current, /withdrawals, ...).
    urlpatterns.append(path("api/v1/", include((app_urls.urlpatterns, app))))
    urlpatterns.append(path("", include((getattr(app_urls, "runbook_urlpatterns", []), f"{app}-runbook"))))


# The same handlers in every mode (embedded, production, tests): JSON for the API, plain pages for the admin.
handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
handler404 = "common.views.not_found"
handler500 = "common.views.server_error"
