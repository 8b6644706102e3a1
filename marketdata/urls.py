from django.urls import path

from marketdata.apis import CandlesApi

urlpatterns = [path("candles/<str:symbol>", CandlesApi.as_view(), name="candles")]
runbook_urlpatterns: list = []
