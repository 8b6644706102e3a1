"""Report selectors: the daily report, house P&L per day, and reconciliation."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from betting.models import Bet, User
from ledger.models import Account, LedgerEntry
from ledger.selectors import ledger_audit
from rounds.models import Round
from withdrawals.models import Deposit, Withdrawal
from withdrawals.selectors import payouts_compare_with_custodian


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min), tz)
    return start, start + dt.timedelta(days=1)


def _sum(queryset, field_name: str) -> int:
    return queryset.aggregate(total=Sum(field_name))["total"] or 0


@dataclass(frozen=True)
class DailyReport:
    day: dt.date
    total_users: int
    new_users: int
    active_bettors: int
    bets: int
    volume_u: int
    fees_u: int
    house_pnl_u: int
    rounds_settled: int
    deposits: int
    deposits_u: int
    withdrawals_requested: int
    withdrawals_requested_u: int
    withdrawals_completed: int
    withdrawals_completed_u: int


def daily_report_get(*, day: dt.date) -> DailyReport:
    start, end = day_bounds(day)
    bets = Bet.objects.filter(created_at__gte=start, created_at__lt=end)
    house = LedgerEntry.objects.filter(account_id=Account.HOUSE, ts__gte=start, ts__lt=end)
    deposits = Deposit.objects.filter(created_at__gte=start, created_at__lt=end)
    requested = Withdrawal.objects.filter(created_at__gte=start, created_at__lt=end)
    completed = Withdrawal.objects.filter(status=Withdrawal.Status.COMPLETED, updated_at__gte=start, updated_at__lt=end)
    bet_numbers = bets.aggregate(count=Count("id"), users=Count("user_id", distinct=True), volume=Sum("stake_u"))
    return DailyReport(
        day=day,
        total_users=User.objects.filter(date_joined__lt=end).count(),
        new_users=User.objects.filter(date_joined__gte=start, date_joined__lt=end).count(),
        active_bettors=bet_numbers["users"],
        bets=bet_numbers["count"],
        volume_u=bet_numbers["volume"] or 0,
        fees_u=_sum(house.filter(ref_type="settlement"), "amount_u"),
        house_pnl_u=_sum(house, "amount_u"),
        rounds_settled=Round.objects.filter(settled_at__gte=start, settled_at__lt=end).count(),
        deposits=deposits.count(),
        deposits_u=_sum(deposits, "amount_u"),
        withdrawals_requested=requested.count(),
        withdrawals_requested_u=_sum(requested, "amount_u"),
        withdrawals_completed=completed.count(),
        withdrawals_completed_u=_sum(completed, "amount_u"),
    )


@dataclass(frozen=True)
class PnlDay:
    day: dt.date
    fees_u: int  # settlement fees and rounding dust
    adjustments_u: int  # manual credits/debits against the house
    house_pnl_u: int
    volume_u: int


def house_pnl_by_day(*, start: dt.date, end: dt.date) -> list[PnlDay]:
    """One row per day from `start` to `end` inclusive (days without activity are zeros)."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    tz = timezone.get_current_timezone()
    house = (
        LedgerEntry.objects.filter(account_id=Account.HOUSE, ts__gte=since, ts__lt=until)
        .annotate(day=TruncDate("ts", tzinfo=tz))
        .values("day")
        .annotate(
            total=Sum("amount_u"),
            fees=Sum("amount_u", filter=Q(ref_type="settlement")),
        )
    )
    by_day = {row["day"]: row for row in house}
    volume = dict(
        Bet.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(total=Sum("stake_u"))
        .values_list("day", "total")
    )
    rows = []
    day = start
    while day <= end:
        row = by_day.get(day, {})
        total, fees = row.get("total") or 0, row.get("fees") or 0
        rows.append(PnlDay(day, fees, total - fees, total, volume.get(day) or 0))
        day += dt.timedelta(days=1)
    return rows


@dataclass
class Reconciliation:
    checks: list[tuple[str, bool, list[str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def reconcile(*, payout_days: int | None = 30) -> Reconciliation:
    """Ledger vs cached balances vs open pools vs pending withdrawals vs the custodian's payouts (the last
    `payout_days` days; None: all): every view of the money must agree."""
    result = Reconciliation()
    audit = ledger_audit()
    result.checks.append(
        (
            "ledger: every batch sums to 0 and cached balances equal Σ entries",
            audit.ok,
            [f"batch {b} sums to {t} u" for b, t in audit.unbalanced_batches]
            + [f"{code}: cached {c} u, entries {t} u" for code, c, t in audit.balance_mismatches]
            + ([f"global sum {audit.global_sum_u} u"] if audit.global_sum_u else []),
        )
    )
    pools = dict(Account.objects.filter(kind=Account.Kind.ROUND_POOL).values_list("code", "balance_u"))
    pool_problems = []
    for code, status, up_u, down_u in Round.objects.values_list("code", "status", "up_pool_u", "down_pool_u"):
        balance_u = pools.get(Account.round_pool_code(code), 0)
        expected_u = 0 if status == Round.Status.SETTLED else up_u + down_u
        if balance_u != expected_u:
            pool_problems.append(f"round {code} ({status}): pool account {balance_u} u, expected {expected_u} u")
    open_stakes = dict(
        Bet.objects.filter(round__status__in=[Round.Status.OPEN, Round.Status.LOCKED])
        .values("round__code")
        .annotate(total=Sum("stake_u"))
        .values_list("round__code", "total")
    )
    for code, up_u, down_u in Round.objects.filter(status__in=[Round.Status.OPEN, Round.Status.LOCKED]).values_list(
        "code", "up_pool_u", "down_pool_u"
    ):
        if open_stakes.get(code, 0) != up_u + down_u:
            pool_problems.append(f"round {code}: Σ stakes {open_stakes.get(code, 0)} u, pools {up_u + down_u} u")
    result.checks.append(
        ("round pools: open pools = pool accounts = Σ stakes; settled pools empty", not pool_problems, pool_problems)
    )
    pending_u = (
        Account.objects.filter(code=Account.WITHDRAWALS_PENDING).values_list("balance_u", flat=True).first() or 0
    )
    queued_u = _sum(
        Withdrawal.objects.filter(status__in=[Withdrawal.Status.QUEUED, Withdrawal.Status.PROCESSING]), "amount_u"
    )
    result.checks.append(
        (
            "pending withdrawals: withdrawals:pending = Σ queued/processing withdrawals",
            pending_u == queued_u,
            [] if pending_u == queued_u else [f"withdrawals:pending {pending_u} u, queued/processing {queued_u} u"],
        )
    )
    # The ledger alone cannot see a withdrawal refunded here and paid there: only the custodian can say.
    payouts = payouts_compare_with_custodian(days=payout_days)
    result.checks.append(
        (
            f"payouts: {payouts.checked} withdrawal(s) agree with the payout service's record",
            payouts.ok,
            payouts.mismatches,
        )
    )
    cash_u = _sum(Account.objects.filter(kind=Account.Kind.USER_CASH), "balance_u")
    cash_entries_u = _sum(LedgerEntry.objects.filter(account__kind=Account.Kind.USER_CASH), "amount_u")
    result.checks.append(
        (
            "user cash: Σ cached balances = Σ entries",
            cash_u == cash_entries_u,
            [] if cash_u == cash_entries_u else [f"cached {cash_u} u, entries {cash_entries_u} u"],
        )
    )
    return result


def tvl_by_day(*, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    """TVL (user cash + round pools + pending withdrawals) at the end of each day, from the ledger entries."""
    kinds = [Account.Kind.USER_CASH, Account.Kind.ROUND_POOL, Account.Kind.PENDING]
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    entries = LedgerEntry.objects.filter(account__kind__in=kinds)
    running = _sum(entries.filter(ts__lt=since), "amount_u")
    per_day = dict(
        entries.filter(ts__gte=since, ts__lt=until)
        .annotate(day=TruncDate("ts", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Sum("amount_u"))
        .values_list("day", "total")
    )
    rows = []
    day = start
    while day <= end:
        running += per_day.get(day) or 0
        rows.append((day, running))
        day += dt.timedelta(days=1)
    return rows
