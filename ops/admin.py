from django.contrib import admin

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call
from ops.models import Alert, Heartbeat, OpsSwitch
from ops.services import circuit_breaker_reset, ops_emergency_stop, ops_maintenance


@admin.register(OpsSwitch)
class OpsSwitchAdmin(ReadOnlyAdmin):
    """The emergency stop, the circuit breaker and maintenance. Switched only through the actions (audited).

    The admin stays reachable in maintenance (ops.maintenance), so staff can turn it off here.
    """

    list_display = ["name", "active", "reason", "rule", "changed_at", "changed_by"]
    actions = ["emergency_stop_on", "emergency_stop_off", "circuit_breaker_reset", "maintenance_on", "maintenance_off"]

    def has_ops_switch_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("ops.change_opsswitch")

    def _with_reason(self, request, queryset, *, action: str, title: str, call):
        form = action_form(request)
        if form.is_bound and form.is_valid():
            admin_call(request, lambda: call(form.cleaned_data["reason"]), success=f"{title}: done.")
            return None
        return action_confirmation(
            self,
            request,
            queryset,
            action=action,
            form=form,
            title=title,
            explanation="This change takes effect for every process at once.",
        )

    @admin.action(description="Emergency stop ON (refuse bets and withdrawal processing)…", permissions=["ops_switch"])
    def emergency_stop_on(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="emergency_stop_on",
            title="Emergency stop ON",
            call=lambda reason: ops_emergency_stop(active=True, reason=reason, actor=request.user, source="admin"),
        )

    @admin.action(description="Emergency stop OFF (resume)…", permissions=["ops_switch"])
    def emergency_stop_off(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="emergency_stop_off",
            title="Emergency stop OFF",
            call=lambda reason: ops_emergency_stop(active=False, reason=reason, actor=request.user, source="admin"),
        )

    @admin.action(description="Reset the circuit breaker…", permissions=["ops_switch"])
    def circuit_breaker_reset(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="circuit_breaker_reset",
            title="Reset the circuit breaker",
            call=lambda reason: circuit_breaker_reset(reason=reason, actor=request.user, source="admin"),
        )

    @admin.action(description="Maintenance ON (API answers 503, beat tasks skip)…", permissions=["ops_switch"])
    def maintenance_on(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="maintenance_on",
            title="Maintenance ON",
            call=lambda reason: ops_maintenance(active=True, reason=reason, actor=request.user, source="admin"),
        )

    @admin.action(description="Maintenance OFF (resume the API and the beat)…", permissions=["ops_switch"])
    def maintenance_off(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="maintenance_off",
            title="Maintenance OFF",
            call=lambda reason: ops_maintenance(active=False, reason=reason, actor=request.user, source="admin"),
        )


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["severity", "key", "status", "summary", "first_seen_at", "last_seen_at", "notify_count"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["key", "summary"]
    date_hierarchy = "last_seen_at"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "beat_at"]
