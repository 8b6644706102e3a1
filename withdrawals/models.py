from django.conf import settings
from django.db import models


class Deposit(models.Model):
    """Money that arrived from outside; one per external transaction id."""

    class Status(models.TextChoices):
        CREDITED = "CREDITED"

    tx_id = models.CharField(max_length=128, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    amount_u = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREDITED)
    source = models.CharField(max_length=16)
    raw_payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "deposits"
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount_u__gt=0), name="deposit_amount_positive")]

    def __str__(self) -> str:
        return f"deposit {self.tx_id} {self.amount_u} u"


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        PROCESSING = "PROCESSING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    amount_u = models.BigIntegerField()
    destination = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    tx_hash = models.CharField(max_length=128, blank=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "withdrawals"
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount_u__gt=0), name="withdrawal_amount_positive")]

    def __str__(self) -> str:
        return f"withdrawal {self.pk} {self.amount_u} u {self.status}"
