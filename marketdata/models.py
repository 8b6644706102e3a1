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


class PriceSource(models.Model):
    """A place prices come from, as data: an operator adds a key and enables it.

    `config` by kind (see marketdata/sources.py): http_json has `close_url` / `quote_url`
    templates with `{symbol}`, `{date}` and `{key}`, JSON paths (lists of keys) for price and
    timestamp, optional `auth_header` + `auth_env` (+ `auth_format`), `key_env`, `symbol_map`;
    csv has the URLs (http or file) and the column names; manual is the operators' own entry.
    Health is kept on the row by every fetch (marketdata.services.source_health_record).
    """

    class Kind(models.TextChoices):
        HTTP_JSON = "http_json", "HTTP JSON"
        CSV = "csv", "CSV (HTTP or file)"
        MANUAL = "manual", "Manual (operators)"

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    enabled = models.BooleanField(default=False, db_default=False)
    weight = models.PositiveSmallIntegerField(default=1, db_default=1)
    timeout_ms = models.PositiveIntegerField(default=5000, db_default=5000)
    config = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True, default="", db_default="")
    # Health: the last RECENT_WINDOW polls as "1"/"0", newest last.
    recent = models.CharField(max_length=64, blank=True, default="", db_default="")
    consecutive_failures = models.PositiveIntegerField(default=0, db_default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", db_default="")
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Quotes of this source rejected since it was added, by reason ({"timeout": 3, "html": 1}): a counter.
    rejected = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "price_sources"
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=models.Q(timeout_ms__gte=100), name="price_source_timeout")]

    def __str__(self) -> str:
        return self.name


class PriceTick(models.Model):
    """One live price a source answered: what candles and the freshness gauges read."""

    symbol = models.CharField(max_length=16)
    price = models.DecimalField(max_digits=18, decimal_places=6)
    source = models.CharField(max_length=64)
    ts = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        db_table = "price_ticks"
        ordering = ["-ts"]
        indexes = [models.Index(fields=["symbol", "ts"], name="price_tick_symbol_ts")]
        constraints = [models.CheckConstraint(condition=models.Q(price__gt=0), name="price_tick_price_positive")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.price} @ {self.ts:%Y-%m-%d %H:%M:%S} ({self.source})"


class TickDaily(models.Model):
    """A day of ticks kept after archive_ticks removed them: the 1d candles of older periods."""

    symbol = models.CharField(max_length=16)
    date = models.DateField()
    open = models.DecimalField(max_digits=18, decimal_places=6)
    high = models.DecimalField(max_digits=18, decimal_places=6)
    low = models.DecimalField(max_digits=18, decimal_places=6)
    close = models.DecimalField(max_digits=18, decimal_places=6)
    tick_count = models.PositiveIntegerField()
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()

    class Meta:
        db_table = "price_tick_daily"
        verbose_name = "daily tick summary"
        verbose_name_plural = "daily tick summaries"
        ordering = ["-date", "symbol"]
        constraints = [models.UniqueConstraint(fields=["symbol", "date"], name="price_tick_daily_unique")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.date}"


class CloseCheck(models.Model):
    """One quorum attempt at the official close of a symbol on a day: the evidence settlement used."""

    class Outcome(models.TextChoices):
        ACCEPTED = "ACCEPTED", "Accepted by quorum"
        NO_QUORUM = "NO_QUORUM", "No quorum"

    symbol = models.CharField(max_length=16)
    date = models.DateField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    quorum = models.PositiveSmallIntegerField()
    max_deviation_bps = models.PositiveIntegerField()
    checked_at = models.DateTimeField()

    class Meta:
        db_table = "close_checks"
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["symbol", "date", "checked_at"], name="close_check_symbol_date")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.date} {self.outcome}"


class CloseQuote(models.Model):
    """What one source answered in a CloseCheck: its price, its time, the hash of its raw answer, the verdict."""

    close_check = models.ForeignKey(CloseCheck, on_delete=models.CASCADE, related_name="quotes")
    source = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    quote_ts = models.DateTimeField(null=True, blank=True)
    payload_sha256 = models.CharField(max_length=64, blank=True, default="")
    accepted = models.BooleanField(default=False)
    reason = models.CharField(max_length=32, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "close_quotes"
        ordering = ["close_check_id", "source"]

    def __str__(self) -> str:
        return f"{self.source}: {self.price} ({'accepted' if self.accepted else self.reason})"
