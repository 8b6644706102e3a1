from django.conf import settings
from django.db import models


class OpsSwitch(models.Model):
    """A system-wide switch (emergency stop, circuit breaker, maintenance): one row each, read on every bet.

    Maintenance is read on every API request and every beat task, by every process on every host.
    """

    class Name(models.TextChoices):
        EMERGENCY_STOP = "emergency_stop"
        CIRCUIT_BREAKER = "circuit_breaker"
        MAINTENANCE = "maintenance"

    name = models.CharField(max_length=32, choices=Name.choices, unique=True)
    active = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    rule = models.CharField(max_length=64, blank=True, help_text="The breaker rule that tripped, if automatic")
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "ops_switches"
        verbose_name_plural = "ops switches"
        ordering = ["name"]
        indexes = [models.Index(fields=["active"], name="ops_switch_active")]

    def __str__(self) -> str:
        return f"{self.name}: {'ON' if self.active else 'off'}"


class Heartbeat(models.Model):
    """Last time a periodic process proved it was alive (the beat writes "beat" every 30 s)."""

    name = models.CharField(max_length=32, unique=True)
    beat_at = models.DateTimeField()

    class Meta:
        db_table = "ops_heartbeats"

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class EventCount(models.Model):
    """Per-minute counts of events the breaker rates need across processes (e.g. rejected bets)."""

    name = models.CharField(max_length=64)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "ops_event_counts"
        constraints = [models.UniqueConstraint(fields=["name", "minute"], name="ops_event_count_unique_minute")]

    def __str__(self) -> str:
        return f"{self.name} {self.minute:%Y-%m-%d %H:%M} = {self.count}"


class Alert(models.Model):
    """One alert condition, de-duplicated by `key`; re-notified at most every ALERT_RENOTIFY_SECONDS."""

    class Severity(models.TextChoices):
        P0 = "P0", "P0 critical"
        P1 = "P1", "P1 high"
        P2 = "P2", "P2 medium"
        P3 = "P3", "P3 low"

    class Status(models.TextChoices):
        OPEN = "OPEN"
        RESOLVED = "RESOLVED"

    key = models.CharField(max_length=128, unique=True)
    rule = models.CharField(max_length=64, db_index=True)
    severity = models.CharField(max_length=2, choices=Severity.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    summary = models.TextField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notify_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ops_alerts"
        ordering = ["status", "severity", "-last_seen_at"]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.key} {self.status}"
