from django.urls import path

from betting.apis import AuthTokenApi, MeApi, MeStatementApi

urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("me", MeApi.as_view(), name="me"),
    path("me/statement", MeStatementApi.as_view(), name="me-statement"),
]
runbook_urlpatterns: list = []
