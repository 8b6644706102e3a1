"""Beat tasks of market data: thin, idempotent, safe to run twice at once."""

from celery import shared_task


@shared_task(name="marketdata.ingest_prices", ignore_result=True)
def ingest_prices() -> dict:
    from marketdata.services import prices_ingest

    report = prices_ingest()
    return {"ticks": report.ticks, "outcomes": report.outcomes}


@shared_task(name="marketdata.archive_ticks", ignore_result=True)
def archive_ticks() -> dict:
    """Nightly: the beat asks every hour, and only the 02:00 ET hour archives (nothing is left the next time)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from marketdata.selectors import market_timezone
    from marketdata.services import ticks_archive

    if timezone.now().astimezone(market_timezone()).hour != 2:
        return {"skipped": "not 02:00 ET"}
    report = ticks_archive(older_than=timedelta(days=settings.PRICE_TICK_RETENTION_DAYS), source="beat")
    return {"deleted": report.deleted, "new_days": report.days}
