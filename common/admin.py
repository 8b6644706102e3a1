"""Admin helpers: read-only model admins, confirmed actions, and service calls whose errors become red messages."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
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


def _integer_id_fits(pk_field: Any, value: int) -> bool:
    low, high = connection.ops.integer_field_range(pk_field.get_internal_type())  # (None, None) on SQLite
    return (-(2**63) if low is None else low) <= value <= (2**63 - 1 if high is None else high)


def selection_error(model_admin: admin.ModelAdmin, request: HttpRequest) -> str | None:
    """Why the posted `_selected_action` ids are not ids of this model, or None when they all are.

    Django passes them straight to `filter(pk__in=...)`, so "abc" (or an integer beyond the
    column) raises ValueError / ValidationError there: a 500 instead of a message.
    """
    pk_field = model_admin.model._meta.pk
    for raw in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
        try:
            value = pk_field.to_python(raw)
            if value is None:  # "" becomes None here and a ValueError in the query
                raise ValidationError("empty")
        except ValidationError:
            return (
                f"{raw[:40]!r} is not the id of a {model_admin.model._meta.verbose_name}. No items have been changed."
            )
        if isinstance(value, int) and not _integer_id_fits(pk_field, value):
            return f"{raw[:40]!r} is out of range for an id. No items have been changed."
    return None


class SelectionCheckedAdmin(admin.ModelAdmin):
    """Every admin with actions: a bad selection is a red message and a redirect, never a 500."""

    # *args/**kwargs: Django 6 adds `action_location`; the check is the same wherever the action was chosen.
    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        error = selection_error(self, request)
        if error:
            self.message_user(request, error, messages.ERROR)
            return None  # changelist_view redirects back to the list: nothing ran, nothing changed
        return super().response_action(request, queryset, *args, **kwargs)


class ProjectAdminSite(admin.AdminSite):
    """The default admin site (common.apps.AdminConfig): every ModelAdmin registered on it, ours and
    third-party ones alike (auth groups, celery beat's schedules), gets the selection check."""

    site_header = "Up/Down House — back office"
    site_title = "Up/Down House"
    index_title = "Operations and records"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SelectionCheckedAdmin):
            admin_class = type(
                admin_class.__name__, (SelectionCheckedAdmin, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)


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
