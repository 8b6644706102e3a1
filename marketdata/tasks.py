"""Beat tasks of market data: thin, idempotent, safe to run twice at once."""

from celery import shared_task


@shared_task(name="marketdata.ingest_prices", ignore_result=True)
def ingest_prices() -> dict:
    from marketdata.services import prices_ingest

    report = prices_ingest()
    return {"ticks": report.ticks, "outcomes": report.outcomes}
