"""Operations endpoints: liveness, readiness, metrics (plain views) and the protected ops API."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from common.api import ErrorSerializer, StrictLimitOffsetPagination
from ops.auth import OPS_AUTHENTICATION, OPS_TOKEN_AUTH, IsOpsOrStaff, acting_user, ops_request_allowed
from ops.dashboard import dashboard_numbers, metrics_text
from ops.health import health_report
from ops.migration_state import PENDING_CODE
from ops.models import OpsSwitch
from ops.reports import switch_changed_by
from ops.selectors import maintenance_get, switch_get
from ops.services import (
    circuit_breaker_reset,
    circuit_breaker_reset_approve,
    circuit_breaker_reset_request,
    ops_emergency_stop,
    ops_maintenance,
)
from ops.statement import period_parse, statement_csv, statement_get


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
    body: dict[str, object] = {
        "status": "fail" if failed else "ok",
        "checks": {check.name: check.ok for check in checks},
        "maintenance": _maintenance_on(),
    }
    if failed:
        body["failed"] = failed
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
    """GET the breaker; POST {"reason"} resets it (the ops token), or, from an operator's token, asks to
    (202 with the four-eyes `approval_request`); POST {"approve": REQUEST_ID} from another operator lifts it."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
        approve = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(responses={200: SwitchOutputSerializer})
    def get(self, request):
        return Response(SwitchOutputSerializer(_switch_out(switch_get(name=OpsSwitch.Name.CIRCUIT_BREAKER))).data)

    @extend_schema(request=InputSerializer, responses={200: SwitchOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor, source = acting_user(request), self.audit_source(request)
        if "approve" in data.validated_data:
            switch, _ = circuit_breaker_reset_approve(
                request_id=data.validated_data["approve"], actor=actor, source=source
            )
        elif actor is not None:
            approval, _ = circuit_breaker_reset_request(
                reason=data.validated_data["reason"], actor=actor, source=source
            )
            return Response(
                {"approval_request": approval.pk, "status": approval.status, "expires_at": approval.expires_at},
                status=202,
            )
        else:
            switch, _ = circuit_breaker_reset(reason=data.validated_data["reason"], actor=actor, source=source)
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


class StatementCsvRenderer(BaseRenderer):
    """`?format=csv` or `Accept: text/csv`: the statement as CSV (an error as its JSON body)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return JSONRenderer().render(data)


class MeStatementApi(APIView):
    """The caller's statement for `?from=YYYY-MM-DD&to=YYYY-MM-DD` (America/New_York days, both optional).

    Opening and closing balance, every cash line oldest first with its description and the balance
    after it, and a summary per round (staked, won, net). `results` and `count` keep the ledger
    line fields (id, amount_u, ref_type, ref_id, batch, ts). CSV with `?format=csv` or `Accept: text/csv`.
    """

    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, StatementCsvRenderer]  # type: ignore[list-item]

    class LineSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        ts = serializers.DateTimeField()
        amount_u = serializers.IntegerField()
        balance_after_u = serializers.IntegerField()
        ref_type = serializers.CharField()
        ref_id = serializers.CharField()
        batch = serializers.IntegerField(source="batch_id")
        description = serializers.CharField()
        round = serializers.CharField(allow_null=True)

    class RoundSerializer(serializers.Serializer):
        round = serializers.CharField()
        result = serializers.CharField(allow_null=True)
        staked_u = serializers.IntegerField()
        won_u = serializers.IntegerField(source="returned_u")
        net_u = serializers.IntegerField()

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="First day, YYYY-MM-DD (America/New_York)."),
            OpenApiParameter("to", str, description="Last day, YYYY-MM-DD, inclusive."),
        ],
        responses={200: dict, 400: OpenApiResponse(ErrorSerializer, description="`invalid_period`.")},
    )
    def get(self, request):
        start, end = period_parse(start=request.query_params.get("from"), end=request.query_params.get("to"))
        statement = statement_get(user=request.user, start=start, end=end)
        if request.accepted_renderer.format == "csv":
            return Response(
                statement_csv(statement),
                headers={"Content-Disposition": 'attachment; filename="statement.csv"'},
            )
        # The lines are paged as before (limit / offset, `count`, `results`); the balances cover the period.
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(statement.lines, request, view=self)
        response = paginator.get_paginated_response(self.LineSerializer(page, many=True).data)
        response.data = {
            "from": start,
            "to": end,
            "opening_balance_u": statement.opening_balance_u,
            "closing_balance_u": statement.closing_balance_u,
            **response.data,
            "rounds": self.RoundSerializer(statement.rounds, many=True).data,
        }
        return response
