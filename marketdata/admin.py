from django.contrib import admin

from common.admin import admin_call
from marketdata.models import CalendarOverride, OfficialClose
from marketdata.services import calendar_override_set, official_close_set


@admin.register(OfficialClose)
class OfficialCloseAdmin(admin.ModelAdmin):
    """Operators enter or correct official closes here; every save goes through the audited service."""

    list_display = ["symbol", "date", "price", "source", "created_by", "updated_at"]
    list_filter = ["symbol", "source"]
    search_fields = ["symbol", "date"]
    fields = ["symbol", "date", "price", "source"]
    date_hierarchy = "date"

    def get_readonly_fields(self, request, obj=None):
        return ["symbol", "date"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        saved = admin_call(
            request,
            lambda: official_close_set(
                symbol=obj.symbol, day=obj.date, price=obj.price, source=obj.source or "manual",
                acting_user=request.user, channel="admin", reason="entered in the admin",
            ),
        )  # fmt: skip
        if saved is not None:
            obj.pk = saved.pk


@admin.register(CalendarOverride)
class CalendarOverrideAdmin(admin.ModelAdmin):
    """Unscheduled closures and early closes the `holidays` package does not know about."""

    list_display = ["date", "kind", "close_time", "reason", "created_by", "created_at"]
    list_filter = ["kind"]
    fields = ["date", "kind", "close_time", "reason"]

    def save_model(self, request, obj, form, change):
        saved = admin_call(
            request,
            lambda: calendar_override_set(
                day=obj.date, kind=obj.kind, reason=obj.reason, close_time=obj.close_time,
                acting_user=request.user, channel="admin",
            ),
        )  # fmt: skip
        if saved is not None:
            obj.pk = saved.pk
