"""Maintenance mode, honoured by every process: the web middleware and the Celery task class.

The flag is the `maintenance` row of ops_switches (ops.services.ops_maintenance switches it),
read on every request (one read of the switches that are on, which a bet's halt check reuses; a
GET may take its process's read of the last SWITCHES_READ_MAX_AGE_SECONDS) and every task run, so a
switch made on one host is honoured by every other host at its next write or task, and within a
second by its reads. What
is already running when it turns on finishes; `restore` waits until nothing has written for
RESTORE_QUIET_SECONDS, which covers those stragglers.

This module imports no app at import time: config/celery.py names the task class by path,
and the middleware is loaded before the URLconf.
"""

import logging

from celery import Task
from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# What stays reachable in maintenance: liveness and readiness (they report it), metrics, the
# admin (staff log in and turn maintenance off there), the token-protected ops API, the offline
# API docs, static files. Everything else (bettors' API, the manual's /rounds/current,
# /withdrawals, deposit webhooks, which their sender retries on a 503) is refused.
EXEMPT_PATHS = ("/healthz", "/health", "/metrics")
EXEMPT_PREFIXES = ("/admin/", "/api/v1/ops/", "/api/schema/", "/api/docs/")


def maintenance_exempt(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES) or path.startswith(static)


def _unavailable(code: str, detail: str) -> JsonResponse:
    response = JsonResponse({"code": code, "detail": detail}, status=503)
    response["Retry-After"] = str(settings.MAINTENANCE_RETRY_AFTER_SECONDS)
    return response


class MaintenanceMiddleware:
    """503 {"code": "maintenance"} with Retry-After for every non-exempt path while maintenance is on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if maintenance_exempt(request.path):
            return self.get_response(request)
        from ops.selectors import maintenance_get, switches_on, switches_remembered

        # A read may take this process's read of the last second; a write reads afresh (ops.selectors.switches_on).
        max_age = settings.SWITCHES_READ_MAX_AGE_SECONDS if request.method in ("GET", "HEAD", "OPTIONS") else 0
        try:
            on = switches_on(max_age=max_age)  # one read for the request: maintenance here, a bet's halt later
        except DatabaseError:
            # Cannot tell whether maintenance is on: refuse rather than let a write slip into a restore.
            logger.exception("maintenance check failed")
            return _unavailable("unavailable", "The service cannot reach its database; try again shortly.")
        with switches_remembered(on):
            maintenance = maintenance_get()
            if maintenance is None:
                return self.get_response(request)
        return _unavailable("maintenance", f"The house is in maintenance ({maintenance.reason}); try again later.")


class MaintenanceAwareTask(Task):
    """The task class of every Celery task (config/celery.py): skips the run while maintenance is on.

    A task that must keep running (the beat heartbeat: it proves the beat is alive and holds no
    data a restore could lose) takes `base=MaintenanceExemptTask`.
    """

    runs_in_maintenance = False

    def __call__(self, *args, **kwargs):
        if not self.runs_in_maintenance:
            from ops.selectors import maintenance_get

            maintenance = maintenance_get()
            if maintenance is not None:
                logger.info("task %s skipped: maintenance (%s)", self.name, maintenance.reason)
                return {"skipped": "maintenance", "reason": maintenance.reason}
        return super().__call__(*args, **kwargs)


class MaintenanceExemptTask(MaintenanceAwareTask):
    """The task class of a task that runs in maintenance too (a class, not a decorator option, so the
    checker sees it)."""

    runs_in_maintenance = True
