from django.urls import include, path

urlpatterns: list = []
runbook_urlpatterns: list = [
    path("", include("django_prometheus.urls")),
]
