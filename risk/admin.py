"""Risk in the admin: the house limits, per-user overrides, self-exclusions, and the exposure page.

Every save goes through risk.services (permission, reason, audit, the cache version): the next bet
sees it, in every process, with no restart.
"""

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path

from common.errors import ApplicationError, permission_require
from marketdata.selectors import market_timezone
from risk.exposure import round_exposure
from risk.models import RiskLimits, SelfExclusion, UserLimit
from risk.selectors import house_limits_get
from risk.services import CHANGE_LIMITS, LIMIT_FIELDS, risk_limits_set, self_exclusion_create, user_limit_set
from rounds.models import Round

_REASON = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), max_length=1000, help_text="Audited.")


class _ServiceSavedAdmin(admin.ModelAdmin):
    """save_model calls a service; its refusal becomes a red message and no green one."""

    def _service_save(self, request: HttpRequest, call) -> None:
        try:
            call()
        except ApplicationError as exc:
            request._risk_refused = True  # type: ignore[attr-defined]
            messages.error(request, f"{exc.detail} [{exc.code}] Nothing was changed.")

    def message_user(self, request, message, level=messages.INFO, *args: Any, **kwargs: Any) -> None:
        if getattr(request, "_risk_refused", False) and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, *args, **kwargs)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_risk_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, "_risk_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def log_addition(self, request, obj, message):  # the audit log is the record; no LogEntry for a refusal
        if obj.pk:
            return super().log_addition(request, obj, message)
        return None


class RiskLimitsForm(forms.ModelForm):
    reason = _REASON

    class Meta:
        model = RiskLimits
        fields = [*LIMIT_FIELDS]


@admin.register(RiskLimits)
class RiskLimitsAdmin(_ServiceSavedAdmin):
    form = RiskLimitsForm
    list_display = ["__str__", *LIMIT_FIELDS, "updated_at", "updated_by", "reason"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(CHANGE_LIMITS) and not RiskLimits.objects.exists()

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(CHANGE_LIMITS)

    def get_changeform_initial_data(self, request):
        limits = house_limits_get()  # the first row starts from the limits in force (the settings)
        return {name: getattr(limits, name) for name in LIMIT_FIELDS}

    def save_model(self, request, obj, form, change) -> None:
        changes = {name: form.cleaned_data[name] for name in LIMIT_FIELDS}
        self._service_save(
            request,
            lambda: risk_limits_set(
                changes=changes, reason=form.cleaned_data["reason"], acting_user=request.user, source="admin"
            ),
        )
        obj.pk = RiskLimits.objects.filter(pk=1).values_list("pk", flat=True).first()

    def save_related(self, request, form, formsets, change) -> None:
        pass

    def get_urls(self):
        view = self.admin_site.admin_view(self.exposure_view)
        return [path("exposure/", view, name="risk_exposure"), *super().get_urls()]

    def exposure_view(self, request):
        """The exposure of a round (?round=CODE), else of every OPEN and LOCKED round."""
        permission_require(request.user, "risk.view_exposure", detail="Exposure needs 'risk.view_exposure'.")
        code = (request.GET.get("round") or "").strip()
        exposures, error = [], ""
        try:
            if code:
                exposures = [round_exposure(code=code, top=20)]
            else:
                rounds = Round.objects.filter(status__in=[Round.Status.OPEN, Round.Status.LOCKED]).order_by("code")
                exposures = [round_exposure(code=r.code, top=10, round_=r) for r in rounds]
        except ApplicationError as exc:
            error = f"{exc.detail} [{exc.code}]"
        recent = list(Round.objects.order_by("-code").values_list("code", "status")[:15])
        return TemplateResponse(
            request,
            "admin/risk/exposure.html",
            {
                **self.admin_site.each_context(request),
                "title": "Exposure",
                "exposures": exposures,
                "error": error,
                "code": code,
                "recent": recent,
                "limits": house_limits_get(),
                "opts": self.model._meta,
            },
        )


class UserLimitForm(forms.ModelForm):
    reason = _REASON

    class Meta:
        model = UserLimit
        fields = ["user", "max_stake_u", "max_user_round_u", "max_user_day_u", "ends_at"]
        help_texts = {"ends_at": "When the override ends (America/New_York if no zone is given)."}


@admin.register(UserLimit)
class UserLimitAdmin(_ServiceSavedAdmin):
    """Per-user overrides: added (newest in force wins), never edited; an empty field keeps the house's limit."""

    form = UserLimitForm
    list_display = ["user", "max_stake_u", "max_user_round_u", "max_user_day_u", "starts_at", "ends_at", "reason"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(CHANGE_LIMITS)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm(CHANGE_LIMITS)

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        ends_at: datetime = data["ends_at"]
        self._service_save(
            request,
            lambda: setattr(
                obj,
                "pk",
                user_limit_set(
                    user=data["user"],
                    ends_at=ends_at,
                    reason=data["reason"],
                    max_stake_u=data["max_stake_u"],
                    max_user_round_u=data["max_user_round_u"],
                    max_user_day_u=data["max_user_day_u"],
                    acting_user=request.user,
                    source="admin",
                ).pk,
            ),
        )

    def save_related(self, request, form, formsets, change) -> None:
        pass


class SelfExclusionForm(forms.ModelForm):
    days = forms.IntegerField(min_value=1, help_text="Excluded from now for this many days; cannot be shortened.")
    reason = _REASON

    class Meta:
        model = SelfExclusion
        fields = ["user"]


@admin.register(SelfExclusion)
class SelfExclusionAdmin(_ServiceSavedAdmin):
    """Self-exclusions: staff add one for a bettor who asked; nobody edits or lifts one."""

    form = SelfExclusionForm
    list_display = ["user", "starts_at", "ends_at_et", "source", "created_by", "reason"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("risk.add_selfexclusion")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("risk.add_selfexclusion")

    @admin.display(description="ends (America/New_York)")
    def ends_at_et(self, obj: SelfExclusion) -> str:
        return f"{obj.ends_at.astimezone(market_timezone()):%Y-%m-%d %H:%M} ET"

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data

        def call() -> None:
            exclusion, _ = self_exclusion_create(
                user=data["user"], days=data["days"], reason=data["reason"], acting_user=request.user, source="admin"
            )
            obj.pk, obj.starts_at, obj.ends_at, obj.source = (
                exclusion.pk,
                exclusion.starts_at,
                exclusion.ends_at,
                "admin",
            )

        self._service_save(request, call)

    def save_related(self, request, form, formsets, change) -> None:
        pass
