from celery import shared_task


@shared_task(name="withdrawals.process_batch")
def withdrawals_process_batch(limit: int | None = None) -> dict:
    """Beat: pay one batch of approved QUEUED withdrawals and resume stale PROCESSING ones (status first;
    one flagged for reconciliation is settled only on the custodian's answer).

    Idempotent and safe beside other workers (skip-locked claims). During an emergency stop it
    does nothing and says so.
    """
    from withdrawals.exceptions import ProcessingHalted
    from withdrawals.services import withdrawals_process

    try:
        report = withdrawals_process(limit=limit, source="beat")
    except ProcessingHalted as exc:
        return {"halted": exc.detail}
    return {
        "claimed": report.claimed,
        "completed": len(report.completed),
        "failed": len(report.failed),
        "in_flight": len(report.in_flight),
        "errors": len(report.errors),
    }
