"""Shared per-minute event counters: a leaf of ops (its models only), so the rooms below may count.

`bet_place` counts each refused bet here; the circuit breaker's rule (ops.rules) reads the rows.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ops.models import EventCount


def event_count_add(*, name: str, count: int = 1, at: datetime | None = None) -> None:
    """Add to this minute's shared counter (one UPDATE; one INSERT the first time in a minute).

    betting.services.bet_place calls `event_count_add(name="bet_rejected")` for every refused bet,
    after its rolled-back transaction (so refusals from the API, the admin and commands all count).
    """
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    if EventCount.objects.filter(name=name, minute=minute).update(count=F("count") + count):
        return
    try:
        with transaction.atomic():
            EventCount.objects.create(name=name, minute=minute, count=count)
    except IntegrityError:
        EventCount.objects.filter(name=name, minute=minute).update(count=F("count") + count)
