"""Admin helpers: read-only model admins, confirmed actions, and service calls whose errors become red messages."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse

from common.errors import ApplicationError


def admin_call(request: HttpRequest, call: Callable[[], Any], *, success: str | None = None) -> Any:
    try:
        result = call()
    except ApplicationError as exc:
        messages.error(request, f"{exc.detail} [{exc.code}]")
        return None
    if success:
        messages.success(request, success)
    return result


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browsable and searchable; changes happen only through services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReasonForm(forms.Form):
    """Every manual state change asks why; the answer goes into the audit log."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=1000)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


def action_form(request: HttpRequest, form_class: type[forms.Form] = ReasonForm, **kwargs: Any) -> forms.Form:
    """An action's confirmation form: bound (to be validated) once the staff user pressed Confirm."""
    return form_class(request.POST if "confirm" in request.POST else None, **kwargs)


def action_confirmation(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: Any,
    *,
    action: str,
    form: forms.Form,
    template: str = "admin/action_confirmation.html",
    **context: Any,
) -> TemplateResponse:
    """The page that shows what an action will do and re-posts the selection with the form."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "form": form,
            "queryset": queryset,
            "action": action,
            "opts": model_admin.model._meta,
            **context,
        },
    )
