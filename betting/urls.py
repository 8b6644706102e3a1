from django.urls import path

from betting.apis import AuthTokenApi, BetDetailApi, BetReceiptApi, BetsApi, MeApi

urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("me", MeApi.as_view(), name="me"),
    path("bets", BetsApi.as_view(), name="bets"),
    path("bets/<int:bet_id>", BetDetailApi.as_view(), name="bet-detail"),
    path("bets/<int:bet_id>/receipt", BetReceiptApi.as_view(), name="bet-receipt"),
]
runbook_urlpatterns: list = []
