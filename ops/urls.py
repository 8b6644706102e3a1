from django.urls import path

from ops.apis import (
    CircuitBreakerApi,
    EmergencyStopApi,
    MaintenanceApi,
    MeStatementApi,
    OpsHealthApi,
    health,
    healthz,
    metrics,
)

urlpatterns = [
    # The bettor's statement is a report over every room (ops.statement), so ops serves it.
    path("me/statement", MeStatementApi.as_view(), name="me-statement"),
    path("ops/health", OpsHealthApi.as_view(), name="ops-health"),
    path("ops/emergency-stop", EmergencyStopApi.as_view(), name="ops-emergency-stop"),
    path("ops/circuit-breaker", CircuitBreakerApi.as_view(), name="ops-circuit-breaker"),
    path("ops/maintenance", MaintenanceApi.as_view(), name="ops-maintenance"),
]
# The operating manual's own paths.
runbook_urlpatterns = [
    # The bettor's statement is a report over every room (ops.statement), so ops serves it.
    path("me/statement", MeStatementApi.as_view(), name="me-statement"),
    path("healthz", healthz, name="healthz"),
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),
]
