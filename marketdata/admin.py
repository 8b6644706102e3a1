from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call
from marketdata.display import evidence_html
from marketdata.models import CalendarOverride, CloseCheck, CloseQuote, OfficialClose, PriceSource, PriceTick, TickDaily
from marketdata.selectors import (
    close_evidence_get,
    feed_thresholds,
    market_close_at,
    market_timezone,
    source_feed,
    trading_day_previous,
)
from marketdata.services import (
    calendar_override_set,
    official_close_set,
    price_source_create,
    price_source_test,
    price_source_update,
)


@admin.register(OfficialClose)
class OfficialCloseAdmin(admin.ModelAdmin):
    """Operators enter or correct official closes here; every save goes through the audited service."""

    list_display = ["symbol", "date", "price", "source", "created_by", "updated_at"]
    list_filter = ["symbol", "source"]
    search_fields = ["symbol", "date"]
    fields = ["symbol", "date", "price", "source", "evidence"]
    date_hierarchy = "date"

    def get_readonly_fields(self, request, obj=None):
        return ["symbol", "date", "evidence"] if obj is not None else ["evidence"]

    @admin.display(description="evidence (latest quorum check)")
    def evidence(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return evidence_html(close_evidence_get(symbol=obj.symbol, day=obj.date))

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


HEALTH_COLOURS = {"green": "#2e7d32", "amber": "#ef8f00", "red": "#c62828", "grey": "#9e9e9e"}


def _ny(value) -> str:
    return "-" if value is None else value.astimezone(market_timezone()).strftime("%Y-%m-%d %H:%M:%S ET")


@admin.register(PriceSource)
class PriceSourceAdmin(admin.ModelAdmin):
    """Sources with their health at a glance; enable/disable and "test now" as confirmed, audited actions."""

    list_display = ["name", "kind", "enabled", "health", "consecutive_failures", "last_success", "error"]
    list_filter = ["enabled", "kind"]
    search_fields = ["name"]
    fields = ["name", "kind", "enabled", "weight", "timeout_ms", "config", "notes", "health_detail"]
    readonly_fields = ["health_detail"]
    actions = ["enable_sources", "disable_sources", "test_now"]

    def get_readonly_fields(self, request, obj=None):
        # name and kind are fixed once made; notes are the preset's description
        return ["name", "kind", "notes", "health_detail"] if obj is not None else ["health_detail"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="health (recent polls)")
    def health(self, obj):
        if obj.kind == PriceSource.Kind.MANUAL:
            return "entered by operators (not polled)"
        feed = source_feed(obj, feed_thresholds())
        return format_html(
            '<span style="color:{}" title="{}">&#9679; {}</span> {}',
            HEALTH_COLOURS[feed.colour], "up" if feed.up else "down", feed.colour, self.success_rate(obj),
        )  # fmt: skip

    @admin.display(description="last error")
    def error(self, obj) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else (obj.last_error or "-")

    @admin.display(description="success (recent polls)")
    def success_rate(self, obj) -> str:
        feed = source_feed(obj, feed_thresholds())
        return "-" if feed.success_rate is None else f"{feed.success_rate:.0%} of {feed.polls}"

    @admin.display(description="last success")
    def last_success(self, obj) -> str:
        return _ny(obj.last_success_at)

    @admin.display(description="health and rejections")
    def health_detail(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "-"
        rejected = ", ".join(f"{k}: {v}" for k, v in sorted((obj.rejected or {}).items())) or "none"
        return format_html(
            "{} · last success {} · last failure {} · recent polls <code>{}</code> · rejected: {}",
            self.health(obj), _ny(obj.last_success_at), _ny(obj.last_failure_at),
            obj.recent or "-", rejected,
        )  # fmt: skip

    def save_model(self, request, obj, form, change):
        if not change:
            saved = admin_call(
                request,
                lambda: price_source_create(
                    name=obj.name, kind=obj.kind, enabled=obj.enabled, weight=obj.weight, timeout_ms=obj.timeout_ms,
                    config=obj.config, acting_user=request.user, channel="admin",
                ),
            )  # fmt: skip
        else:
            changes = {
                f: form.cleaned_data[f] for f in form.changed_data if f in ("enabled", "weight", "timeout_ms", "config")
            }
            update = partial(
                price_source_update, name=obj.name, changes=changes, acting_user=request.user, channel="admin",
                reason="edited in the admin",
            )  # fmt: skip
            saved = admin_call(request, update) if changes else PriceSource.objects.get(pk=obj.pk)
        if saved is not None:
            obj.pk = saved.pk

    def has_change_source_permission(self, request) -> bool:
        return request.user.has_perm("marketdata.change_pricesource")

    @admin.action(description="Enable selected sources…", permissions=["change_source"])
    def enable_sources(self, request, queryset):
        return self._switch(request, queryset, enabled=True)

    @admin.action(description="Disable selected sources…", permissions=["change_source"])
    def disable_sources(self, request, queryset):
        return self._switch(request, queryset, enabled=False)

    def _switch(self, request, queryset, *, enabled: bool):
        form = action_form(request)
        if form.is_bound and form.is_valid():
            for source in queryset.order_by("name"):
                admin_call(
                    request,
                    partial(
                        price_source_update, name=source.name, changes={"enabled": enabled}, acting_user=request.user,
                        channel="admin", reason=form.cleaned_data["reason"],
                    ),
                    success=f"{source.name} {'enabled' if enabled else 'disabled'}.",
                )  # fmt: skip
            return None
        verb = "Enable" if enabled else "Disable"
        return action_confirmation(
            self, request, queryset, action=f"{verb.lower()}_sources", form=form,
            title=f"{verb} {', '.join(s.name for s in queryset)} — please confirm", submit_label=f"Confirm: {verb}",
        )  # fmt: skip

    @admin.action(
        description="Test now: ask the selected sources (live quote and the last close)", permissions=["change_source"]
    )
    def test_now(self, request, queryset):
        now = timezone.now()
        last_close_day = trading_day_previous(day=now.astimezone(market_timezone()).date() + timedelta(days=1))
        if (close_at := market_close_at(day=last_close_day)) is not None and now < close_at:
            last_close_day = trading_day_previous(day=last_close_day)
        for source in queryset.order_by("name"):
            for day in (None, last_close_day):
                quote = admin_call(
                    request,
                    partial(price_source_test, name=source.name, symbol=settings.MARKET_SYMBOL, day=day,
                            acting_user=request.user),
                )  # fmt: skip
                if quote is None:
                    continue
                what = "live quote" if day is None else f"close of {day:%Y-%m-%d}"
                if quote.ok:
                    self.message_user(
                        request,
                        f"{source.name} {quote.symbol} {what}: {quote.price} at {_ny(quote.ts)}"
                        f"{' (a date only)' if quote.date_only else ''}, {quote.latency_ms} ms, "
                        f"sha256 {quote.payload_sha256[:16]}…",
                        level=messages.SUCCESS,
                    )
                else:
                    self.message_user(
                        request, f"{source.name} {quote.symbol} {what}: rejected {quote.reason}: {quote.detail}",
                        level=messages.ERROR,
                    )  # fmt: skip
        return None


@admin.register(PriceTick)
class PriceTickAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "price", "source", "ts_et", "received_at"]
    list_filter = ["symbol", "source"]
    date_hierarchy = "ts"
    show_full_result_count = False  # a million ticks: no COUNT(*) on every page

    @admin.display(description="time (America/New_York)", ordering="ts")
    def ts_et(self, obj) -> str:
        return _ny(obj.ts)


@admin.register(TickDaily)
class TickDailyAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "date", "open", "high", "low", "close", "tick_count"]
    list_filter = ["symbol"]
    date_hierarchy = "date"


class CloseQuoteInline(admin.TabularInline):
    model = CloseQuote
    can_delete = False
    extra = 0
    fields = ("source", "price", "quote_ts", "accepted", "reason", "detail", "payload_sha256", "latency_ms")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CloseCheck)
class CloseCheckAdmin(ReadOnlyAdmin):
    """Every quorum attempt at an official close, with each source's answer: the evidence settlement used."""

    list_display = ["symbol", "date", "outcome", "price", "reason", "checked_at_et", "quorum", "max_deviation_bps"]
    list_filter = ["outcome", "symbol"]
    date_hierarchy = "date"
    inlines = [CloseQuoteInline]

    @admin.display(description="checked (America/New_York)", ordering="checked_at")
    def checked_at_et(self, obj) -> str:
        return _ny(obj.checked_at)
