from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One manual or automated state change: who, what, why, before and after."""

    class Source(models.TextChoices):
        ADMIN = "admin"
        CLI = "cli"
        API = "api"
        BEAT = "beat"
        SYSTEM = "system"
        OPS_TOKEN = "ops-token"  # the machine credential (Bearer $OPS_TOKEN): no person behind it

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    # Who, in words: the staff email, or for the command line the OS user ("os:alice") when no
    # Django user ran it, so no manual action is recorded with a blank actor.
    actor_label = models.CharField(max_length=254, blank=True, default="", db_default="")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=128, blank=True, db_index=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    ts = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "audit_events"
        ordering = ["-ts", "-id"]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.actor_name()} {self.action} {self.object_type}:{self.object_id}"

    def actor_name(self) -> str:
        """Who acted, never blank: the person's email, else the recorded label (the OS user at the
        shell), else the source ("beat", "ops-token", "system"), which is then the actor."""
        if self.actor is not None:
            return self.actor.email
        return self.actor_label or self.source
