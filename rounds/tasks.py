"""Beat tasks for the round lifecycle: thin, idempotent, safe to run twice at once."""

from celery import shared_task


@shared_task(name="rounds.lifecycle_tick", ignore_result=True)
def lifecycle_tick() -> dict:
    from rounds.services import round_lifecycle_tick

    report = round_lifecycle_tick()
    return {
        "opened": report.opened,
        "locked": report.locked,
        "settled": report.settled,
        "waiting_for_close": report.waiting_for_close,
        "overdue": report.overdue,
        "still_overdue": report.still_overdue,
        "errors": report.errors,
    }
