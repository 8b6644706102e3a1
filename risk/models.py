"""Risk limits as data: the house's limits (one row), per-user overrides, self-exclusions.

Changed only through risk.services (audited, with a reason); read by bet_place through the
process-local snapshot of risk.selectors (no query per bet), which reloads when a change bumps
the version key.
"""

from django.conf import settings
from django.db import models


class RiskLimits(models.Model):
    """The house's limits: a single row (pk 1). Absent, the BET_* settings are the limits.

    NULL in an optional limit means "no limit".
    """

    min_stake_u = models.BigIntegerField(help_text="Smallest stake of one bet (u)")
    max_stake_u = models.BigIntegerField(help_text="Largest stake of one bet (u)")
    max_user_round_u = models.BigIntegerField(null=True, blank=True, help_text="Per user, per round: Σ stakes (u)")
    max_user_day_u = models.BigIntegerField(
        null=True, blank=True, help_text="Per user, per market day (America/New_York): Σ stakes (u)"
    )
    max_round_pool_u = models.BigIntegerField(null=True, blank=True, help_text="Per round: UP + DOWN pool cap (u)")
    max_side_ratio = models.PositiveIntegerField(
        null=True, blank=True, help_text="A side may not exceed N × the other side ..."
    )
    side_ratio_floor_u = models.BigIntegerField(default=0, help_text="... once the round's pool is above this (u)")
    reason = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "risk_limits"
        verbose_name = "risk limits"
        verbose_name_plural = "risk limits"
        permissions = [
            ("change_limits", "Can change risk limits and per-user overrides"),
            ("view_exposure", "Can view round and user exposure"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_stake_u__gt=0, max_stake_u__gte=models.F("min_stake_u")),
                name="risk_limits_stake_range",
            ),
            models.CheckConstraint(
                condition=models.Q(side_ratio_floor_u__gte=0), name="risk_limits_floor_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return "risk limits"


class UserLimit(models.Model):
    """A per-user override until `ends_at`: higher for a known market maker, lower (or 0) for someone at risk.

    NULL in a field keeps the house's limit for it. The newest override in force wins.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    max_stake_u = models.BigIntegerField(null=True, blank=True)
    max_user_round_u = models.BigIntegerField(null=True, blank=True)
    max_user_day_u = models.BigIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "risk_user_limits"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ends_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="user_limit_period"),
            models.CheckConstraint(
                condition=(
                    (models.Q(max_stake_u__isnull=True) | models.Q(max_stake_u__gte=0))
                    & (models.Q(max_user_round_u__isnull=True) | models.Q(max_user_round_u__gte=0))
                    & (models.Q(max_user_day_u__isnull=True) | models.Q(max_user_day_u__gte=0))
                ),
                name="user_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"limit override for {self.user_id} until {self.ends_at:%Y-%m-%d}"


class SelfExclusion(models.Model):
    """The bettor (or staff for them) shut betting off until `ends_at`. Never shortened or lifted early."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    source = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "self_exclusions"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "ends_at"]), models.Index(fields=["ends_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="self_exclusion_period")
        ]

    def __str__(self) -> str:
        return f"self-exclusion of {self.user_id} until {self.ends_at:%Y-%m-%d}"
