from celery import shared_task


@shared_task(name="approvals.expire", ignore_result=True)
def expire() -> int:
    from approvals.services import approvals_expire

    return approvals_expire(source="beat")
