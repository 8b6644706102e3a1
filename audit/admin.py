from django.contrib import admin

from audit.models import AuditEvent
from common.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["ts", "actor", "source", "action", "object_type", "object_id", "reason"]
    list_filter = ["action", "source", ("actor", admin.RelatedOnlyFieldListFilter), "ts"]
    search_fields = ["action", "object_id", "reason", "actor__email"]
    date_hierarchy = "ts"
