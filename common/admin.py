"""Admin helpers: read-only model admins, and service calls whose errors become red messages."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

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
