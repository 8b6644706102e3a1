from django.conf import settings
from django.db import models


class ApprovalRequest(models.Model):
    """A manual decision one staff user asked for, waiting for another (four eyes).

    `kind` + `target` name what it is about (a withdrawal id, a round code, a user's cash account,
    the breaker, a backup file); `payload` is what exactly will be done, so the approver approves
    that and nothing else. The room that owns the action executes it in the transaction that
    records the deciding approval (`approvals.services.approval_grant`).
    """

    class Kind(models.TextChoices):
        WITHDRAWAL = "withdrawal"
        ROUND_RESULT = "round_result"
        LEDGER_ADJUST = "ledger_adjust"
        BREAKER_RESET = "breaker_reset"
        RESTORE = "restore"

    class Status(models.TextChoices):
        PENDING = "PENDING"
        APPROVED = "APPROVED"
        EXPIRED = "EXPIRED"
        CANCELLED = "CANCELLED"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=128)
    payload = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Who asked (never may approve); the label is the OS user for a request from the shell.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_label = models.CharField(max_length=254, blank=True)
    # Whose money it is (a withdrawal's owner, an adjusted user): may not approve either.
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approvals_required = models.PositiveSmallIntegerField(default=1)
    source = models.CharField(max_length=16)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "approval_requests"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "target"],
                condition=models.Q(status="PENDING"),
                name="approval_one_pending_per_target",
            ),
            models.CheckConstraint(condition=models.Q(approvals_required__gte=1), name="approval_required_positive"),
        ]

    def __str__(self) -> str:
        return f"approval request {self.pk} {self.kind} {self.target} {self.status}"


class ApprovalVote(models.Model):
    """One staff user's approval of a request; a person approves a request at most once."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="votes")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "approval_votes"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="approval_vote_once_per_person")]

    def __str__(self) -> str:
        return f"vote {self.approver_id} on {self.request_id}"
