from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call
from ops.models import Alert, Heartbeat, OpsSwitch
from ops.reports import switch_changed_by
from ops.services import circuit_breaker_reset, ops_emergency_stop, ops_maintenance


@admin.register(OpsSwitch)
class OpsSwitchAdmin(ReadOnlyAdmin):
    """The emergency stop, the circuit breaker and maintenance. Switched only through the actions (audited).

    The admin stays reachable in maintenance (ops.maintenance), so staff can turn it off here.
    """

    list_display = ["name", "active", "reason", "rule", "changed_at", "changed_by_name"]
    actions = ["emergency_stop_on", "emergency_stop_off", "circuit_breaker_reset", "maintenance_on", "maintenance_off"]

    def has_ops_switch_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("ops.change_opsswitch")

    def _with_reason(self, request, queryset, *, action: str, title: str, call):
        form = action_form(request)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            admin_call(
                request,
                lambda: call(reason),
                success=f"{title}: done.",
                history=[switch for switch in queryset if switch.pk],
                history_message=f"{title}. Reason: {reason}",
            )
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

    @admin.display(description="changed by")
    def changed_by_name(self, switch: OpsSwitch) -> str:
        # Who flipped it, never a blank: a command without --actor is named by the audit log's OS user.
        return switch_changed_by(switch=switch) or "-"


def _switch_action(name: str, *, description: str, title: str, call: Callable[[HttpRequest, str], object]):
    """One confirmed, audited switch action: the confirmation page asks for the reason, the service does the rest."""

    @admin.action(description=description, permissions=["ops_switch"])
    def action(modeladmin: OpsSwitchAdmin, request: HttpRequest, queryset):
        return modeladmin._with_reason(
            request, queryset, action=name, title=title, call=lambda reason: call(request, reason)
        )

    action.__name__ = name
    return action


for _name, _description, _title, _call in [
    (
        "emergency_stop_on",
        "Emergency stop ON (refuse bets and withdrawal processing)…",
        "Emergency stop ON",
        lambda request, reason: ops_emergency_stop(active=True, reason=reason, actor=request.user, source="admin"),
    ),
    (
        "emergency_stop_off",
        "Emergency stop OFF (resume)…",
        "Emergency stop OFF",
        lambda request, reason: ops_emergency_stop(active=False, reason=reason, actor=request.user, source="admin"),
    ),
    (
        "circuit_breaker_reset",
        "Reset the circuit breaker…",
        "Reset the circuit breaker",
        lambda request, reason: circuit_breaker_reset(reason=reason, actor=request.user, source="admin"),
    ),
    (
        "maintenance_on",
        "Maintenance ON (API answers 503, beat tasks skip)…",
        "Maintenance ON",
        lambda request, reason: ops_maintenance(active=True, reason=reason, actor=request.user, source="admin"),
    ),
    (
        "maintenance_off",
        "Maintenance OFF (resume the API and the beat)…",
        "Maintenance OFF",
        lambda request, reason: ops_maintenance(active=False, reason=reason, actor=request.user, source="admin"),
    ),
]:
    setattr(OpsSwitchAdmin, _name, _switch_action(_name, description=_description, title=_title, call=_call))


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["severity", "key", "status", "summary", "first_seen_at", "last_seen_at", "notify_count"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["key", "summary"]
    date_hierarchy = "last_seen_at"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "beat_at"]
