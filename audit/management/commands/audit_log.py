import datetime as dt
import re

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.selectors import audit_events_list
from common.commands import bounded_int
from common.times import format_market_time


def parse_since(text: str) -> dt.datetime:
    """`24h`, `7d`, `30m`, an ISO date (midnight UTC) or an ISO datetime."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        try:
            return timezone.now() - dt.timedelta(**{unit: int(match.group(1))})
        except (OverflowError, ValueError) as exc:  # 99999999999d is before year 1
            raise CommandError(f"--since {text!r} reaches back before any date there is. [invalid_since]") from exc
    when = parse_datetime(text)
    if when is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(
                f"--since must look like 24h, 7d, 2025-09-08 or 2025-09-08T14:00, got {text!r}. [invalid_since]"
            )
        when = dt.datetime.combine(day, dt.time.min)
    return when if timezone.is_aware(when) else timezone.make_aware(when, dt.UTC)


class Command(BaseCommand):
    help = "Print the audit log (oldest first): who did what, when, from where, and why."

    def add_arguments(self, parser):
        parser.add_argument("--since", default="24h", help="24h, 7d, 2025-09-08 or an ISO datetime (default 24h)")
        parser.add_argument("--action", default="", help="only actions starting with this, e.g. ops.emergency_stop")
        parser.add_argument("--actor", default="", help="only this staff email")
        parser.add_argument(
            "--limit", type=bounded_int(1, 1_000_000), default=1000, help="at most this many (1..1000000)"
        )

    def handle(self, *args, since: str, action: str, actor: str, limit: int, **options):
        events = audit_events_list(since=parse_since(since), action_prefix=action, actor_email=actor, limit=limit)
        for event in events:
            who = event.actor_name()
            target = f"{event.object_type}:{event.object_id}" if event.object_type else event.object_id
            reason = f" reason={event.reason!r}" if event.reason else ""
            self.stdout.write(
                f"{format_market_time(event.ts)} {event.source:<6} {who:<30} {event.action} {target}{reason}"
            )
        self.stdout.write(f"{len(events)} event(s).")
