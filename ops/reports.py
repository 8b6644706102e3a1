"""Report selectors: the daily report, house P&L per day, reconciliation and TVL per day, over every app's selectors."""

import datetime as dt
from dataclasses import dataclass, field

from audit.selectors import audit_actor_last
from betting.selectors import bet_activity, bet_stakes_by_round_u, bet_volume_by_day_u, users_count
from common.times import market_zone
from ledger.selectors import (
    house_totals_by_day_u,
    house_totals_u,
    ledger_audit,
    round_pool_balances_u,
    tvl_entries_by_day_u,
    user_cash_totals_u,
    withdrawals_pending_balance_u,
)
from ops.models import OpsSwitch
from rounds.selectors import rounds_pools, rounds_settled_count
from withdrawals.selectors import (
    deposit_totals,
    payouts_compare_with_custodian,
    withdrawal_completed_totals,
    withdrawal_requested_totals,
    withdrawals_pending_total_u,
)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A market day, midnight to midnight America/New_York (23 or 25 hours on a clock change), in every door."""
    tz = market_zone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


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
    activity = bet_activity(start=start, end=end)
    house = house_totals_u(start=start, end=end)
    deposits = deposit_totals(start=start, end=end)
    requested = withdrawal_requested_totals(start=start, end=end)
    completed = withdrawal_completed_totals(start=start, end=end)
    return DailyReport(
        day=day,
        total_users=users_count(joined_before=end),
        new_users=users_count(joined_before=end, joined_since=start),
        active_bettors=activity.bettors,
        bets=activity.bets,
        volume_u=activity.volume_u,
        fees_u=house.fees_u,
        house_pnl_u=house.net_u,
        rounds_settled=rounds_settled_count(start=start, end=end),
        deposits=deposits.count,
        deposits_u=deposits.amount_u,
        withdrawals_requested=requested.count,
        withdrawals_requested_u=requested.amount_u,
        withdrawals_completed=completed.count,
        withdrawals_completed_u=completed.amount_u,
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
    tz = market_zone()
    house = house_totals_by_day_u(start=since, end=until, tz=tz)
    volume = bet_volume_by_day_u(start=since, end=until, tz=tz)
    rows = []
    day = start
    while day <= end:
        totals = house.get(day)
        total, fees = (totals.net_u, totals.fees_u) if totals else (0, 0)
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
    rounds = rounds_pools()
    pools = round_pool_balances_u(round_codes=[round_.code for round_ in rounds])
    pool_problems = []
    for round_ in rounds:
        balance_u = pools.get(round_.code, 0)
        expected_u = round_.up_pool_u + round_.down_pool_u if round_.unsettled else 0
        if balance_u != expected_u:
            pool_problems.append(
                f"round {round_.code} ({round_.status}): pool account {balance_u} u, expected {expected_u} u"
            )
    unsettled = [round_ for round_ in rounds if round_.unsettled]
    open_stakes = bet_stakes_by_round_u(round_codes=[round_.code for round_ in unsettled])
    for round_ in unsettled:
        pools_u = round_.up_pool_u + round_.down_pool_u
        if open_stakes.get(round_.code, 0) != pools_u:
            pool_problems.append(
                f"round {round_.code}: Σ stakes {open_stakes.get(round_.code, 0)} u, pools {pools_u} u"
            )
    result.checks.append(
        ("round pools: open pools = pool accounts = Σ stakes; settled pools empty", not pool_problems, pool_problems)
    )
    pending_u = withdrawals_pending_balance_u()
    queued_u = withdrawals_pending_total_u()
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
    cash = user_cash_totals_u()
    result.checks.append(
        (
            "user cash: Σ cached balances = Σ entries",
            cash.cached_u == cash.entries_u,
            [] if cash.cached_u == cash.entries_u else [f"cached {cash.cached_u} u, entries {cash.entries_u} u"],
        )
    )
    return result


def tvl_by_day(*, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    """TVL (user cash + round pools + pending withdrawals) at the end of each day, from the ledger entries."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    running, per_day = tvl_entries_by_day_u(start=since, end=until, tz=market_zone())
    rows = []
    day = start
    while day <= end:
        running += per_day.get(day) or 0
        rows.append((day, running))
        day += dt.timedelta(days=1)
    return rows


def switch_changed_by(*, switch: OpsSwitch) -> str | None:
    """Who last flipped the switch, never a blank: the staff email, else the audit log's actor (the OS
    user of a command run without --actor, "ops-token", "beat"), else "system"; None if never switched."""
    if switch.changed_by is not None:
        return switch.changed_by.email
    if switch.changed_at is None:
        return None
    return audit_actor_last(object_type="ops_switch", object_id=switch.name) or "system"
