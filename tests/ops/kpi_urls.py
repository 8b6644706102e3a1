"""A URLconf for the KPI tests: the real API plus two endpoints that answer 200 and raise (a 500)."""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as real


def ok(request):
    return JsonResponse({"ok": True})


def boom(request):
    raise RuntimeError("a bug the KPI test provokes")


urlpatterns = [path("api/v1/kpi-test/ok", ok), path("api/v1/kpi-test/boom", boom), *real]
