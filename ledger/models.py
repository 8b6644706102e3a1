from django.conf import settings
from django.db import models
from django.db.models import Q


class Account(models.Model):
    """A ledger account. `balance_u` is a cache of Σ entries, written only by ledger.services."""

    class Kind(models.TextChoices):
        HOUSE = "house"
        USER_CASH = "user_cash"
        ROUND_POOL = "round_pool"
        PENDING = "pending"
        EXTERNAL = "external"

    HOUSE = "house"
    WITHDRAWALS_PENDING = "withdrawals:pending"
    EXTERNAL_DEPOSITS = "external:deposits"
    EXTERNAL_WITHDRAWALS = "external:withdrawals"

    code = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    balance_u = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_accounts"
        ordering = ["code"]
        permissions = [("manual_adjust", "Can credit or debit a user's cash against the house")]
        # The accounts that are not a user's cash: a handful per round, however many users there are.
        # tvl_get sums them and reads Total Cash off the ledger's zero sum (ledger.selectors).
        indexes = [models.Index(fields=["kind"], condition=~Q(kind="user_cash"), name="ledger_account_non_user")]
        constraints = [
            # World accounts may go negative; the house only through a manual adjustment
            # (checked in ledger_post). Users, pools and pending never: the database says so too.
            models.CheckConstraint(
                condition=Q(balance_u__gte=0) | Q(kind__in=["external", "house"]),
                name="ledger_account_protected_balance_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @staticmethod
    def user_cash_code(user_id) -> str:
        return f"user:{user_id}:cash"

    @staticmethod
    def round_pool_code(round_code: str) -> str:
        return f"round:{round_code}:pool"


class LedgerBatch(models.Model):
    """One balanced movement of money: claims its idempotency key before any entry is written."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    ref_type = models.CharField(max_length=32)
    ref_id = models.CharField(max_length=64)
    lines_digest = models.CharField(max_length=64)
    memo = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_batches"
        verbose_name_plural = "ledger batches"
        indexes = [models.Index(fields=["ref_type", "ref_id"])]

    def __str__(self) -> str:
        return f"batch {self.pk} {self.ref_type}:{self.ref_id}"


class LedgerEntry(models.Model):
    """One signed line: positive raises the account's balance. Never updated, never deleted."""

    account = models.ForeignKey(
        Account, to_field="code", db_column="account", on_delete=models.PROTECT, related_name="entries"
    )
    amount_u = models.BigIntegerField()
    ref_type = models.CharField(max_length=32)
    ref_id = models.CharField(max_length=64)
    batch = models.ForeignKey(LedgerBatch, db_column="batch", on_delete=models.PROTECT, related_name="entries")
    ts = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_entries"
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["ref_type", "ref_id"]), models.Index(fields=["account", "ts"])]
        constraints = [models.CheckConstraint(condition=~Q(amount_u=0), name="ledger_entry_amount_non_zero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_u:+d} ({self.ref_type}:{self.ref_id})"
