from django.conf import settings
from django.db import models


class Round(models.Model):
    """One trading day's Up/Down market on the official close."""

    class Status(models.TextChoices):
        OPEN = "OPEN"
        LOCKED = "LOCKED"
        SETTLED = "SETTLED"

    class Result(models.TextChoices):
        UP = "UP"
        DOWN = "DOWN"
        VOID = "VOID"

    code = models.CharField(max_length=8, unique=True, help_text="YYYYMMDD, the trading day")
    symbol = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    result = models.CharField(max_length=4, choices=Result.choices, null=True, blank=True)  # noqa: DJ001 - NULL until settled
    lock_at = models.DateTimeField()
    settle_at = models.DateTimeField()
    fee_bps = models.PositiveIntegerField()
    rule_version = models.PositiveIntegerField(default=1)
    # Cached per-side totals, raised by bet_place in the same conditional UPDATE that
    # checks OPEN-and-before-lock_at: that row lock is what makes a bet racing the lock
    # either in or refused. reconcile checks up + down = the round's pool account.
    up_pool_u = models.BigIntegerField(default=0)
    down_pool_u = models.BigIntegerField(default=0)
    # Who holds the pools, kept by round_pool_raise with each bet (bet_place's last statement): how many
    # users bet, and the largest one user's stake on each side and over both (stakes only grow while OPEN).
    bettors = models.PositiveIntegerField(default=0, db_default=0)
    up_top_u = models.BigIntegerField(default=0, db_default=0)
    down_top_u = models.BigIntegerField(default=0, db_default=0)
    top_u = models.BigIntegerField(default=0, db_default=0)
    reference_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    reference_source = models.CharField(max_length=64, blank=True)
    close_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    close_source = models.CharField(max_length=64, blank=True)
    prev_commit_hash = models.CharField(max_length=64, blank=True)
    # rule_version 2: the previous round's settlement digest when this one opened (in the commit hash).
    prev_settlement_digest = models.CharField(max_length=64, blank=True, default="", db_default="")
    commit_hash = models.CharField(max_length=64)
    settlement_digest = models.CharField(max_length=64, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lock_reason = models.TextField(blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    settle_reason = models.TextField(blank=True)
    overdue_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rounds"
        ordering = ["-code"]
        permissions = [
            ("lock_round", "Can lock a round"),
            ("settle_round", "Can settle a round"),
            ("void_round", "Can void a round"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(up_pool_u__gte=0, down_pool_u__gte=0), name="round_pools_non_negative"
            ),
            models.CheckConstraint(condition=models.Q(fee_bps__lte=10_000), name="round_fee_bps_at_most_100_percent"),
        ]

    def __str__(self) -> str:
        return f"round {self.code} {self.status}"


class RoundSettlement(models.Model):
    """The one settlement of a round: its unique `round` is what makes settling exclusive.

    Written in the same transaction as the payouts, so it exists if and only if
    the money moved.
    """

    round = models.OneToOneField(Round, on_delete=models.PROTECT, related_name="settlement")
    result = models.CharField(max_length=4, choices=Round.Result.choices)
    requested_result = models.CharField(max_length=4, help_text="What was asked: AUTO, UP, DOWN or VOID")
    up_pool_u = models.BigIntegerField()
    down_pool_u = models.BigIntegerField()
    fee_u = models.BigIntegerField()
    dust_u = models.BigIntegerField()
    paid_out_u = models.BigIntegerField(help_text="Σ payouts to bettors (stakes back included)")
    bets_count = models.PositiveIntegerField()
    winners_count = models.PositiveIntegerField()
    ledger_batch_id = models.BigIntegerField(null=True, blank=True)
    digest = models.CharField(max_length=64)
    # The receipts: Merkle root over (bet id, pseudonym, side, stake, payout) in bet id order (rounds.merkle);
    # committed by the digest from rule_version 2. "" for settlements made before receipts existed.
    merkle_root = models.CharField(max_length=64, blank=True, default="", db_default="")
    source = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "round_settlements"
        ordering = ["-round__code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fee_u__gte=0, dust_u__gte=0, paid_out_u__gte=0),
                name="settlement_amounts_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"settlement of {self.round.code}: {self.result}"
