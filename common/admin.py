"""Admin helpers: read-only model admins, confirmed actions, and service calls whose errors become red messages."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from common.errors import ApplicationError
from common.money import usdc_number


def admin_history(request: HttpRequest, objects: Any, message: str) -> None:
    """Django admin's own history (the index's "Recent actions", an object's History page) for an action the
    service already audited: one CHANGE LogEntry per object, next to the audit event."""
    objects = [objects] if isinstance(objects, Model) else list(objects)
    user_id = getattr(request.user, "pk", None)
    if not objects or user_id is None:
        return
    if len(objects) == 1:
        LogEntry.objects.log_actions(user_id, objects, CHANGE, message, single_object=True)
    else:
        LogEntry.objects.log_actions(user_id, objects, CHANGE, message)


def admin_call(
    request: HttpRequest,
    call: Callable[[], Any],
    *,
    success: str | None = None,
    history: Any = None,
    history_message: str | None = None,
) -> Any:
    """Run a service call for an admin action: its refusal becomes an error message (with the bracketed code),
    its success the `success` message and, for `history` (an object or several), an admin LogEntry."""
    try:
        result = call()
    except ApplicationError as exc:
        messages.error(request, f"{exc.detail} [{exc.code}]")
        return None
    if success:
        messages.success(request, success)
    if history is not None:
        admin_history(request, history, history_message or success or "done")
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


def _usdc_label(model: Any, name: str) -> str:
    try:
        label = str(model._meta.get_field(name).verbose_name)
    except Exception:  # noqa: BLE001 - an annotation, not a model field
        label = name.replace("_", " ")
    label = label.removesuffix(" u").removesuffix(" U")
    label = label[:1].upper() + label[1:]
    return label.replace("Up ", "UP ").replace("Down ", "DOWN ") + " (USDC)"


def usdc_column(model: Any, name: str) -> Callable[[Any], str]:
    """A list/detail column showing the integer micro-USDC field `name` as USDC with thousands separators,
    exact ('2.6118'; the heading says "(USDC)"), sortable by the field itself."""

    def show(obj: Any) -> str:
        value = getattr(obj, name, None)
        return "-" if value is None else usdc_number(value)

    show.short_description = _usdc_label(model, name)  # type: ignore[attr-defined]
    show.admin_order_field = name  # type: ignore[attr-defined]
    show.__name__ = f"{name}_usdc"
    return show


class UsdcFieldsMixin:
    """Every `*_u` column and read-only field shows USDC (common.money.format_usdc), never raw micro-units."""

    model: Any

    def _usdc(self, names: Any) -> list:
        columns = self.__dict__.setdefault("_usdc_columns", {})
        out = []
        for name in names:
            if isinstance(name, str) and name.endswith("_u"):
                name = columns.setdefault(name, usdc_column(self.model, name))
            out.append(name)
        return out

    def get_list_display(self, request: HttpRequest) -> Any:
        return self._usdc(super().get_list_display(request))  # type: ignore[misc]

    def _readonly_u_names(self, request: HttpRequest, obj: Any) -> set[str]:
        names = {n for n in super().get_readonly_fields(request, obj) if isinstance(n, str)}  # type: ignore[misc]
        if not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            names |= {field.name for field in self.model._meta.concrete_fields}  # a view-only page: all read-only
        return {name for name in names if name.endswith("_u")}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        declared = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        extra = sorted(self._readonly_u_names(request, obj) - set(declared))
        return self._usdc(declared + extra)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = self._readonly_u_names(request, obj)
        fields = super().get_fields(request, obj)  # type: ignore[misc]
        return [self._usdc([name])[0] if name in readonly else name for name in fields]


class SelectionCheckedAdmin(UsdcFieldsMixin, admin.ModelAdmin):
    """Every admin with actions: a bad selection is a red message and a redirect, never a 500; every `*_u`
    column in USDC."""

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
