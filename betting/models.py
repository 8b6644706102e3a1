import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        if not email:
            raise ValueError("A user needs an email.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, email: str | None) -> "User":
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        db_table = "users"

    def __str__(self) -> str:
        return self.email


class Bet(models.Model):
    class Side(models.TextChoices):
        UP = "UP"
        DOWN = "DOWN"

    class Status(models.TextChoices):
        PLACED = "PLACED"
        WON = "WON"
        LOST = "LOST"
        REFUNDED = "REFUNDED"

    # No single-column FK indexes: (round, side) and (user, round) below cover them, and
    # every index on `bets` costs the million-row settlement UPDATE.
    round = models.ForeignKey("rounds.Round", on_delete=models.PROTECT, related_name="bets", db_index=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="bets", db_index=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    stake_u = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PLACED)
    payout_u = models.BigIntegerField(default=0)
    # NULL = sent without a key; the partial unique index below ignores it.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    request_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "bets"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["round", "side"]),
            models.Index(fields=["user", "round"]),
            models.Index(fields=["created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="bet_unique_idempotency_key_per_user",
            ),
            models.CheckConstraint(condition=models.Q(stake_u__gt=0), name="bet_stake_positive"),
            models.CheckConstraint(condition=models.Q(payout_u__gte=0), name="bet_payout_non_negative"),
        ]
        # A staff token passing `user_id` stakes someone else's cash: only the operator role holds this.
        permissions = [("place_bet_on_behalf", "Can place a bet on behalf of another user")]

    def __str__(self) -> str:
        return f"bet {self.pk} {self.side} {self.stake_u} u"


class BettorRoundTotal(models.Model):
    """One bettor's running stakes in one round, per side: kept by bet_place in the bet's own statement.

    Its row is the bettor's lock in the round (their bets of the round queue on it, and each reads the
    totals its stake made, not a snapshot's), the per-round limit's figure, and what tells a round's
    first bet of a bettor from their next (rounds.services.round_pool_raise counts the bettors and
    keeps the largest stakes from it). Never written but by bet_place; settlement leaves it as history.
    """

    round = models.ForeignKey("rounds.Round", on_delete=models.PROTECT, related_name="+", db_index=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    up_u = models.BigIntegerField(default=0)
    down_u = models.BigIntegerField(default=0)

    class Meta:
        db_table = "bet_totals"
        constraints = [
            models.UniqueConstraint(fields=["round", "user"], name="bet_total_one_per_round_and_user"),
            models.CheckConstraint(condition=models.Q(up_u__gte=0, down_u__gte=0), name="bet_total_non_negative"),
        ]

    def __str__(self) -> str:
        return f"round {self.round_id} user {self.user_id}: UP {self.up_u} u, DOWN {self.down_u} u"
