"""Circuit breaker rules. Each rule is one small function returning a Trip (why to pause betting) or None.

`circuit_breaker_evaluate()` runs them in order from the beat task (and from any path
that wants an immediate check) and opens the breaker on the first trip. Only staff
reset it, with a reason (ops.services.circuit_breaker_reset).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from betting.models import Bet
from ledger.models import Account, LedgerEntry
from ledger.selectors import ledger_audit
from ops.models import EventCount, OpsSwitch
from rounds.models import Round
from withdrawals.models import Withdrawal


@dataclass(frozen=True)
class Trip:
    rule: str
    reason: str


def _window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.OPS_BREAKER_WINDOW_SECONDS)


def rule_ledger_audit(now: datetime) -> Trip | None:
    report = ledger_audit()
    if report.ok:
        return None
    return Trip(
        "ledger_audit",
        f"ledger audit failed: {len(report.unbalanced_batches)} unbalanced batch(es), "
        f"{len(report.balance_mismatches)} balance mismatch(es), global sum {report.global_sum_u} u",
    )


def overdue_rounds(now: datetime):
    grace = timedelta(seconds=settings.OPS_SETTLEMENT_GRACE_SECONDS)
    return Round.objects.filter(status=Round.Status.LOCKED).filter(
        Q(settle_at__lt=now - grace) | Q(overdue_since__isnull=False)
    )


def rule_settlement_overdue(now: datetime) -> Trip | None:
    codes = list(overdue_rounds(now).order_by("code").values_list("code", flat=True)[:5])
    if not codes:
        return None
    return Trip("settlement_overdue", f"round(s) {', '.join(codes)} still LOCKED past settle_at + grace")


def rule_house_loss(now: datetime) -> Trip | None:
    net_u = (
        LedgerEntry.objects.filter(account_id=Account.HOUSE, ts__gte=now - timedelta(hours=24)).aggregate(
            total=Sum("amount_u")
        )["total"]
        or 0
    )
    if -net_u <= settings.OPS_BREAKER_HOUSE_LOSS_U:
        return None
    return Trip("house_loss", f"house lost {-net_u} u in 24 h (limit {settings.OPS_BREAKER_HOUSE_LOSS_U} u)")


def rule_withdrawal_failures(now: datetime) -> Trip | None:
    finished = Withdrawal.objects.filter(
        updated_at__gte=_window_start(now), status__in=[Withdrawal.Status.COMPLETED, Withdrawal.Status.FAILED]
    )
    total = finished.count()
    if total < settings.OPS_BREAKER_WITHDRAWAL_MIN_COUNT:
        return None
    failed = finished.filter(status=Withdrawal.Status.FAILED).count()
    if failed / total < settings.OPS_BREAKER_WITHDRAWAL_FAILURE_RATE:
        return None
    return Trip("withdrawal_failures", f"{failed} of {total} withdrawals failed in the window")


def rule_bet_rejections(now: datetime) -> Trip | None:
    start = _window_start(now)
    rejected = (
        EventCount.objects.filter(name="bet_rejected", minute__gte=start.replace(second=0, microsecond=0)).aggregate(
            total=Sum("count")
        )["total"]
        or 0
    )
    if rejected < settings.OPS_BREAKER_REJECTION_MIN_COUNT:
        return None
    accepted = Bet.objects.filter(created_at__gte=start).count()
    rate = rejected / (rejected + accepted)
    if rate < settings.OPS_BREAKER_REJECTION_RATE:
        return None
    return Trip("bet_rejections", f"{rejected} bets rejected vs {accepted} accepted in the window ({rate:.0%})")


def rule_unusual_betting(now: datetime) -> Trip | None:
    """One bettor holding most of a sizeable open pool looks like manipulation or a runaway client."""
    rounds = {
        code: up + down
        for code, up, down in Round.objects.filter(status=Round.Status.OPEN).values_list(
            "code", "up_pool_u", "down_pool_u"
        )
        if up + down >= settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U
    }
    if not rounds:
        return None
    top = (
        Bet.objects.filter(round__code__in=list(rounds))
        .values("round__code", "user_id")
        .annotate(staked=Sum("stake_u"))
        .order_by("-staked")
    )
    for row in top[:20]:
        pool_u = rounds[row["round__code"]]
        share = row["staked"] / pool_u
        if share > settings.OPS_BREAKER_STAKE_SHARE:
            return Trip(
                "unusual_betting",
                f"one bettor holds {share:.0%} of round {row['round__code']}'s pool "
                f"(limit {settings.OPS_BREAKER_STAKE_SHARE:.0%})",
            )
    return None


RULES: list[Callable[[datetime], Trip | None]] = [
    rule_ledger_audit,
    rule_settlement_overdue,
    rule_house_loss,
    rule_withdrawal_failures,
    rule_bet_rejections,
    rule_unusual_betting,
]


def breaker_trips(*, now: datetime | None = None) -> list[Trip]:
    now = now or timezone.now()
    return [trip for rule in RULES if (trip := rule(now)) is not None]


def circuit_breaker_evaluate(*, now: datetime | None = None, source: str = "beat") -> Trip | None:
    """Run every rule; open the breaker on the first trip. Returns the trip that opened it, if any."""
    from ops.services import circuit_breaker_open

    if OpsSwitch.objects.filter(name=OpsSwitch.Name.CIRCUIT_BREAKER, active=True).exists():
        return None
    now = now or timezone.now()
    for rule in RULES:
        trip = rule(now)
        if trip is not None:
            _, opened = circuit_breaker_open(rule=trip.rule, reason=trip.reason, source=source)
            return trip if opened else None
    return None
