from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from betting.models import Bet, User
from common.admin import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "id", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "id"]
    list_filter = ["is_staff", "is_active", "groups"]
    readonly_fields = ["id", "date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["id", "email", "password"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class RoundCodeFilter(admin.AllValuesFieldListFilter):
    """The bets list's round filter, headed "By round" (Django names it after the related field: "By code")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "round"


@admin.register(Bet)
class BetAdmin(ReadOnlyAdmin):
    """Bets are browsable, never edited: they change only through bet_place and round_settle."""

    # The round's code, not its "round 20261201 OPEN" text: the list keeps room for every column.
    list_display = ["id", "round__code", "user", "side", "stake_u", "status", "payout_u", "created_at"]
    list_filter = ["status", "side", ("round__code", RoundCodeFilter)]
    search_fields = ["=id", "user__email", "round__code", "idempotency_key"]
    list_select_related = ["round", "user"]
    raw_id_fields = ["round", "user"]
