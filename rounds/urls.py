from django.urls import path

from rounds.apis import RoundCurrentApi, RoundDetailApi, RoundListApi, RoundSettlementApi

urlpatterns = [
    path("rounds", RoundListApi.as_view(), name="rounds"),
    path("rounds/current", RoundCurrentApi.as_view(), name="round-current"),
    path("rounds/<str:code>", RoundDetailApi.as_view(), name="round-detail"),
    path("rounds/<str:code>/settlement", RoundSettlementApi.as_view(), name="round-settlement"),
]
# The operating manual's own path: `curl http://localhost:8000/rounds/current`.
runbook_urlpatterns = [
    path("rounds/current", RoundCurrentApi.as_view(), name="round-current"),
]
