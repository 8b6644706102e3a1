"""Operations endpoints: liveness, readiness, metrics (plain views) and the protected ops API."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ops.auth import OPS_AUTHENTICATION, OPS_TOKEN_AUTH, IsOpsOrStaff, acting_user, ops_request_allowed
from ops.dashboard import dashboard_numbers, metrics_text
from ops.health import health_report
from ops.migration_state import PENDING_CODE
from ops.models import OpsSwitch
from ops.reports import switch_changed_by
from ops.selectors import maintenance_get, switch_get
from ops.services import circuit_breaker_reset, ops_emergency_stop, ops_maintenance


@never_cache
def healthz(request):
    """Liveness: the process answers. No I/O."""
    return JsonResponse({"status": "ok"})


def _maintenance_on() -> bool | None:
    try:
        return maintenance_get() is not None
    except Exception:  # noqa: BLE001 - the database check reports a broken database; never a 500 here
        return None


@never_cache
def health(request):
    """Readiness, public and terse: which checks failed, no details; whether maintenance is on."""
    checks = health_report()
    failed = [check.name for check in checks if not check.ok]
    starting = [check.name for check in checks if check.starting]
    body: dict[str, object] = {
        "status": "fail" if failed else "starting" if starting else "ok",
        "checks": {check.name: check.ok for check in checks},
        "maintenance": _maintenance_on(),
    }
    if failed:
        body["failed"] = failed
    if starting:
        body["starting"] = starting  # ok for now, within the grace after the web process started
    for check in checks:
        if check.data.get("code") == PENDING_CODE:  # a deploy signal, not a secret: which migrations to run
            body["code"] = PENDING_CODE
            body["migrations_pending"] = check.data["pending"]
    return JsonResponse(body, status=503 if failed else 200)


@never_cache
def metrics(request):
    """Prometheus exposition; needs the ops token (or a staff session) whenever OPS_TOKEN is set."""
    if settings.OPS_TOKEN and not ops_request_allowed(request):
        response = JsonResponse(
            {"code": "not_authenticated", "detail": "Send Authorization: Bearer <OPS_TOKEN>."}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="ops"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _switch_out(switch: OpsSwitch) -> dict:
    return {
        "name": switch.name,
        "active": switch.active,
        "reason": switch.reason,
        "rule": switch.rule,
        "changed_at": switch.changed_at,
        "changed_by": switch_changed_by(switch=switch),
    }


class SwitchOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    active = serializers.BooleanField()
    reason = serializers.CharField()
    rule = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    changed_by = serializers.CharField(allow_null=True)


class OpsApiView(APIView):
    """Reads: the ops token or any staff user. Writes: the services check `ops.change_opsswitch` for a
    person (operator role; the auditor and finance get 403); the ops token, a machine credential the
    operator configured, may switch and is audited with source "ops-token"."""

    authentication_classes = OPS_AUTHENTICATION
    permission_classes = [IsOpsOrStaff]

    def audit_source(self, request) -> str:
        return "ops-token" if request.auth == OPS_TOKEN_AUTH else "api"


class OpsHealthApi(OpsApiView):
    """Detailed readiness with every check's detail, the switches, TVL and open alerts."""

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request):
        checks = health_report()
        numbers = dashboard_numbers()
        tvl = numbers["tvl"]
        current = numbers["round"]
        failed = [check.name for check in checks if not check.ok]
        body = {
            "status": "fail" if failed else "ok",
            "time": timezone.now(),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail, **c.data} for c in checks},
            "failed": failed,
            "emergency_stop": _switch_out(switch_get(name=OpsSwitch.Name.EMERGENCY_STOP)),
            "circuit_breaker": _switch_out(switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER)),
            "maintenance": _switch_out(switch_get(name=OpsSwitch.Name.MAINTENANCE)),
            "tvl": {
                "locked_u": tvl.locked_u,
                "cash_u": tvl.cash_u,
                "pending_withdrawals_u": tvl.pending_withdrawals_u,
            },
            "round": (
                {
                    "code": current.code,
                    "status": current.status,
                    "up_pool_u": current.up_pool_u,
                    "down_pool_u": current.down_pool_u,
                    "lock_at": current.lock_at,
                    "settle_at": current.settle_at,
                }
                if current
                else None
            ),
            "ledger_unbalanced_batches": numbers["unbalanced_batches"],
            "alerts_open": numbers["alerts_open"],
        }
        return Response(body, status=503 if failed else 200)


class EmergencyStopApi(OpsApiView):
    class InputSerializer(serializers.Serializer):
        active = serializers.BooleanField()
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")

    @extend_schema(responses={200: SwitchOutputSerializer})
    def get(self, request):
        return Response(SwitchOutputSerializer(_switch_out(switch_get(name=OpsSwitch.Name.EMERGENCY_STOP))).data)

    @extend_schema(request=InputSerializer, responses={200: SwitchOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        switch, _ = ops_emergency_stop(
            active=data.validated_data["active"],
            reason=data.validated_data["reason"],
            actor=acting_user(request),
            source=self.audit_source(request),
        )
        return Response(SwitchOutputSerializer(_switch_out(switch)).data)


class CircuitBreakerApi(OpsApiView):
    """GET the breaker; POST {"reason"} resets it (an operator or the ops token, a reason always)."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")

    @extend_schema(responses={200: SwitchOutputSerializer})
    def get(self, request):
        return Response(SwitchOutputSerializer(_switch_out(switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER))).data)

    @extend_schema(request=InputSerializer, responses={200: SwitchOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        switch, _ = circuit_breaker_reset(
            reason=data.validated_data["reason"], actor=acting_user(request), source=self.audit_source(request)
        )
        return Response(SwitchOutputSerializer(_switch_out(switch)).data)


class MaintenanceApi(OpsApiView):
    """GET maintenance mode; POST {"active", "reason"} switches it (reachable while it is on)."""

    class InputSerializer(serializers.Serializer):
        active = serializers.BooleanField()
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")

    @extend_schema(responses={200: SwitchOutputSerializer})
    def get(self, request):
        return Response(SwitchOutputSerializer(_switch_out(switch_get(name=OpsSwitch.Name.MAINTENANCE))).data)

    @extend_schema(request=InputSerializer, responses={200: SwitchOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        switch, _ = ops_maintenance(
            active=data.validated_data["active"],
            reason=data.validated_data["reason"],
            actor=acting_user(request),
            source="api",
        )
        return Response(SwitchOutputSerializer(_switch_out(switch)).data)
