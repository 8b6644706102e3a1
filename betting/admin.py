from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from betting.models import User


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
