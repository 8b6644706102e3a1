from django.conf import settings
from django.db import models


class CalendarOverride(models.Model):
    """An operator's correction to the NASDAQ calendar of the `holidays` package.

    Unscheduled closures (a national day of mourning announced a week ahead), extra
    early closes, or a scheduled holiday on which the market did open after all.
    """

    class Kind(models.TextChoices):
        CLOSED = "CLOSED", "Closed all day"
        EARLY_CLOSE = "EARLY_CLOSE", "Early close"
        OPEN = "OPEN", "Regular trading day"

    date = models.DateField(unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    close_time = models.TimeField(
        null=True, blank=True, help_text="Local (America/New_York) close for an early close; 13:00 when empty."
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "calendar_overrides"
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} {self.kind}"


class OfficialClose(models.Model):
    """The official daily close of a symbol: what AUTO settlement compares.

    Filled in by operators (admin, `set_close`); a price source writes here too, with
    its name in `source`.
    """

    symbol = models.CharField(max_length=16)
    date = models.DateField()
    price = models.DecimalField(max_digits=18, decimal_places=6)
    source = models.CharField(max_length=64, default="manual")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "official_closes"
        ordering = ["-date", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "date"], name="official_close_unique_symbol_date"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="official_close_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.date} {self.price}"
