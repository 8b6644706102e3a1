from collections.abc import Callable
from functools import partial

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from approvals.models import ApprovalRequest
from betting.admin import UserAdmin
from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call, admin_history
from common.errors import ApplicationError
from common.money import usdc_number
from ops.approvals import approval_approve
from ops.models import Alert, Heartbeat, OpsSwitch
from ops.reports import switch_changed_by
from ops.services import circuit_breaker_reset_request, ops_emergency_stop, ops_maintenance
from ops.statement import NEW_YORK, period_parse, statement_csv, statement_get
from rounds.display import settlement_sentence


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
        "Request a circuit breaker reset (another operator approves)…",
        "Request a circuit breaker reset",
        lambda request, reason: circuit_breaker_reset_request(reason=reason, actor=request.user, source="admin"),
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


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Four-eyes requests: read-only rows; "Approve" sends each to its room's approve service."""

    list_display = ["id", "kind", "target", "payload", "status", "requested_by_name", "reason", "expires"]
    list_filter = ["status", "kind"]
    search_fields = ["=id", "target", "reason", "requested_label"]
    actions = ["approve"]

    @admin.display(description="requested by")
    def requested_by_name(self, row: ApprovalRequest) -> str:
        return row.requested_label or "-"

    @admin.display(description="expires", ordering="expires_at")  # the value names its zone (EST / EDT)
    def expires(self, row: ApprovalRequest) -> str:
        return timezone.localtime(row.expires_at, NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")

    @admin.action(description="Approve (four eyes: never your own request)…")
    def approve(self, request, queryset):
        rows = list(queryset.order_by("id"))
        form = action_form(request)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            for row in rows:
                result = admin_call(
                    request,
                    partial(
                        approval_approve,
                        request=row,
                        actor=request.user,
                        source="admin",
                        reason=reason,
                    ),
                    success=f"Request {row.pk} ({row.kind} {row.target}) approved by {request.user.email}.",
                    history=row,
                    history_message=f"approved: {reason}",
                )
                if row.kind == ApprovalRequest.Kind.ROUND_RESULT and result is not None:  # the round's History too
                    done = settlement_sentence(result)
                    messages.success(request, done)
                    admin_history(
                        request,
                        result.round,
                        f"{done} Requested by {row.requested_label}: {row.reason}; approved by "
                        f"{request.user.email}: {reason}",
                    )
            return None
        return action_confirmation(
            self,
            request,
            queryset,
            action="approve",
            form=form,
            title="Approve four-eyes requests",
            explanation="The approved act is done at once, in the same transaction. "
            "You cannot approve a request you made or one that moves your own money.",
        )


class UserStatementAdmin(UserAdmin):
    """The user's page with their statement (ops.statement): a "Statement" link, a month per page, CSV."""

    readonly_fields = [*UserAdmin.readonly_fields, "statement_link"]
    fieldsets = [*UserAdmin.fieldsets, ("Money", {"fields": ["statement_link"]})]

    @admin.display(description="statement")
    def statement_link(self, user) -> str:
        if not user.pk:
            return "-"
        url = reverse("admin:betting_user_statement", args=[user.pk])
        return format_html('<a href="{}">Statement (opening, lines, closing, rounds; CSV)</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.statement_view)
        return [path("<path:object_id>/statement/", view, name="betting_user_statement"), *super().get_urls()]

    def statement_view(self, request, object_id):
        user = self.get_object(request, object_id)
        if user is None or not self.has_view_permission(request, user):
            raise PermissionDenied
        month = request.GET.get("month") or timezone.localtime(timezone.now(), NEW_YORK).strftime("%Y-%m")
        try:
            start, end = period_parse(month=month)
        except ApplicationError as exc:
            messages.error(request, f"{exc.detail} [{exc.code}]")
            month = timezone.localtime(timezone.now(), NEW_YORK).strftime("%Y-%m")
            start, end = period_parse(month=month)
        statement = statement_get(user=user, start=start, end=end)
        if request.GET.get("format") == "csv":
            response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="statement-{month}.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": f"Statement of {user.email}, {month} (America/New_York)",
            "subject": user,
            "month": month,
            "statement": statement,
            "opening": usdc_number(statement.opening_balance_u),
            "closing": usdc_number(statement.closing_balance_u),
            "lines": [
                (line, usdc_number(line.amount_u), usdc_number(line.balance_after_u)) for line in statement.lines
            ],
            "rounds": [
                (r, usdc_number(r.staked_u), usdc_number(r.returned_u), usdc_number(r.net_u)) for r in statement.rounds
            ],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ops/statement.html", context)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserStatementAdmin)
