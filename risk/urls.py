from django.urls import path

from risk.apis import RoundExposureApi, SelfExclusionApi, UserExposureApi

urlpatterns = [
    path("me/self-exclusion", SelfExclusionApi.as_view(), name="self-exclusion"),
    path("risk/exposure/rounds/<str:code>", RoundExposureApi.as_view(), name="round-exposure"),
    path("risk/exposure/users/<str:user_id>", UserExposureApi.as_view(), name="user-exposure"),
]
runbook_urlpatterns: list = []
