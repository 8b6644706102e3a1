from django.contrib import admin

from audit.models import AuditEvent
from common.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["ts", "who", "source", "action", "object_type", "object_id", "reason"]
    list_filter = ["action", "source", ("actor", admin.RelatedOnlyFieldListFilter), "ts"]
    search_fields = ["action", "object_id", "reason", "actor__email"]
    date_hierarchy = "ts"
    list_select_related = ["actor"]

    @admin.display(description="actor", ordering="actor__email")
    def who(self, event: AuditEvent) -> str:
        # A command run without --actor shows the OS user that ran it, never a blank.
        return event.actor_name()
