"""Beat tasks for operations: thin, idempotent, safe to run twice.

Each imports its service inside (house style): ops.services queues `evaluate_alerts` after a
switch commits, so a module-level import here would close a circle.
"""

from celery import shared_task

from ops.maintenance import MaintenanceExemptTask


# Runs in maintenance too: it proves the beat is alive (and honouring maintenance), and holds no data.
@shared_task(name="ops.beat_heartbeat", ignore_result=True, base=MaintenanceExemptTask)
def beat_heartbeat() -> None:
    from ops.services import heartbeat_beat

    heartbeat_beat(name="beat")


@shared_task(name="ops.evaluate_circuit_breaker", ignore_result=True)
def evaluate_circuit_breaker() -> str:
    from ops.services import circuit_breaker_evaluate

    trip = circuit_breaker_evaluate(source="beat")
    return trip.rule if trip else ""


@shared_task(name="ops.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> int:
    from ops.alerts import alerts_evaluate

    return len(alerts_evaluate())
