import uuid

from django.conf import settings
from django.db import models


def payout_reference_new() -> str:
    """A payout reference nobody has used: a random UUID, never the row id (ids repeat after a restore)."""
    return str(uuid.uuid4())


class DepositIntent(models.Model):
    """A bettor's announced deposit: where to send USDC and the reference the custodian reports back."""

    reference = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposit_intents")
    address = models.CharField(max_length=42)
    chain_id = models.PositiveIntegerField()
    token_address = models.CharField(max_length=42)
    amount_u = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "deposit_intents"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_u__isnull=True) | models.Q(amount_u__gt=0),
                name="deposit_intent_amount_positive",
            )
        ]

    def __str__(self) -> str:
        return f"deposit intent {self.reference}"

    @property
    def payment_uri(self) -> str:
        """EIP-681: call `transfer(address, uint256)` on the USDC contract (6 decimals, so uint256 = micro-USDC)."""
        uri = f"ethereum:{self.token_address}@{self.chain_id}/transfer?address={self.address}"
        return uri + (f"&uint256={self.amount_u}" if self.amount_u else "")


class Deposit(models.Model):
    """Money that arrived from outside; one per external transaction id."""

    class Status(models.TextChoices):
        CREDITED = "CREDITED"

    tx_id = models.CharField(max_length=128, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    amount_u = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREDITED)
    source = models.CharField(max_length=16)
    intent = models.ForeignKey(DepositIntent, null=True, blank=True, on_delete=models.PROTECT, related_name="deposits")
    from_address = models.CharField(max_length=42, blank=True)
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
    # The client's Idempotency-Key: a retried request answers the first withdrawal instead of a second one.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    request_digest = models.CharField(max_length=64, blank=True)
    # Who asked: the bettor, or the staff user acting on their behalf (never may approve it).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Four-eyes: above WITHDRAWAL_APPROVAL_THRESHOLD_U nothing is paid until staff approve.
    needs_approval = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_at = models.DateTimeField(null=True, blank=True)
    # Processing: a worker holds a PROCESSING item until lease_until; after that a later run resumes it.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The custodian's idempotency key for this payout, globally unique and never reused. Rows from before
    # it existed keep the id-based reference they were sent under (str(pk)), so `status` still finds them;
    # NULL only for a row the previous release inserted during a rolling deploy (it is sent as str(pk)).
    payout_reference = models.CharField(  # noqa: DJ001 - NULL: see above
        max_length=64, unique=True, null=True, blank=True, default=payout_reference_new, editable=False
    )
    # Committed immediately before each `send`: from then on the payout may be at the custodian.
    send_started_at = models.DateTimeField(null=True, blank=True)
    # Staff asked to fail it while it may be in flight: it is never sent again, and only the custodian's
    # answer (`withdrawal_resolve`) completes or refunds it.
    needs_reconciliation = models.BooleanField(default=False, db_default=False)
    reconciliation_reason = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "withdrawals"
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_u__gt=0), name="withdrawal_amount_positive"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="withdrawal_unique_idempotency_key_per_user",
            ),
        ]
        permissions = [
            ("approve_withdrawal", "Can approve a large withdrawal (four-eyes)"),
            ("process_withdrawal", "Can send withdrawals to the payout adapter now"),
            ("fail_withdrawal", "Can mark a withdrawal failed and refund it"),
            # Moving another user's cash out: finance only, and only to the user's registered address
            # (past its cooling-off) unless another staff user approves (four-eyes, whatever the amount).
            ("request_withdrawal_on_behalf", "Can request a withdrawal on behalf of another user"),
        ]

    def __str__(self) -> str:
        return f"withdrawal {self.pk} {self.amount_u} u {self.status}"

    @property
    def reference(self) -> str:
        """The idempotency reference the payout adapter sees: `payout_reference` (a UUID for new rows)."""
        return self.payout_reference or str(self.pk)

    @property
    def approvals(self) -> int:
        return int(self.approved_by_id is not None) + int(self.second_approved_by_id is not None)


class PayoutAddress(models.Model):
    """An address the user registered to be paid to (their address book).

    A withdrawal staff request on the user's behalf is paid without a second person only to one
    of these, and only from `usable_from` on (created_at + PAYOUT_ADDRESS_COOLING_OFF_HOURS), so
    an address slipped in by someone holding the user's session cannot receive money at once.
    Addresses are kept lower-case: EVM addresses are case-insensitive (the case is a checksum).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payout_addresses")
    address = models.CharField(max_length=42)
    label = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    usable_from = models.DateTimeField()

    class Meta:
        db_table = "payout_addresses"
        verbose_name_plural = "payout addresses"
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="payout_address_unique_per_user")]

    def __str__(self) -> str:
        return f"payout address {self.address} of {self.user_id}"


class SimulatedPayout(models.Model):
    """The simulated payout adapter's 'chain': survives a worker crash so `status` can answer after one."""

    reference = models.CharField(max_length=64, unique=True)
    destination = models.CharField(max_length=128)
    amount_u = models.BigIntegerField()
    tx_hash = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "simulated_payouts"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"simulated payout {self.reference} {self.state}"
