"""Every beat schedule, declared once. `manage.py sync_schedule` writes it to django-celery-beat.

Each entry: name -> (task path, every N seconds). Apps add their tasks here.
"""

SCHEDULE: dict[str, tuple[str, int]] = {
    # rounds: open today's round, lock at lock_at, settle AUTO from settle_at (retries until grace, then overdue).
    "rounds-lifecycle-tick": ("rounds.lifecycle_tick", 30),
    # ops: the heartbeat /health reads, the circuit breaker rules, the alert rules.
    "ops-beat-heartbeat": ("ops.beat_heartbeat", 30),
    "ops-evaluate-circuit-breaker": ("ops.evaluate_circuit_breaker", 60),
    "ops-evaluate-alerts": ("ops.evaluate_alerts", 60),
    # marketdata: live ticks from every enabled source (each with its own timeout; a hanging one blocks nobody).
    "marketdata-ingest-prices": ("marketdata.ingest_prices", 60),
    # marketdata: nightly retention (asked hourly, archives in the 02:00 ET hour), PRICE_TICK_RETENTION_DAYS.
    "marketdata-archive-ticks": ("marketdata.archive_ticks", 3600),
    # approvals: a four-eyes request nobody approved in time expires (and leaves the dashboard).
    "approvals-expire": ("approvals.expire", 60),
    # withdrawals: pay approved queued withdrawals, resume stale PROCESSING ones (status first).
    "withdrawals-process": ("withdrawals.process_batch", 60),
}
