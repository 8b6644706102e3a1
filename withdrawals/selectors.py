from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from common.types import User
from withdrawals.adapters import COMPLETED, FAILED, PENDING, payout_adapter_get
from withdrawals.exceptions import PayoutUnavailable, WithdrawalNotFound
from withdrawals.models import Deposit, DepositIntent, PayoutAddress, SimulatedPayout, Withdrawal


def withdrawal_list(*, user: User) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(user=user).order_by("-id")


def withdrawal_get(*, withdrawal_id: int, user: User | None = None) -> Withdrawal:
    """One withdrawal; with `user`, only that user's own (another user's is simply not found)."""
    rows = Withdrawal.objects.filter(pk=withdrawal_id)
    if user is not None:
        rows = rows.filter(user=user)
    withdrawal = rows.first()
    if withdrawal is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    return withdrawal


def deposit_list(*, user: User) -> QuerySet[Deposit]:
    return Deposit.objects.filter(user=user).select_related("intent").order_by("-id")


def deposit_intent_list(*, user: User) -> QuerySet[DepositIntent]:
    return DepositIntent.objects.filter(user=user).order_by("-id")


def destination_default(*, user: User) -> str:
    """Where a withdrawal without an address goes: the user's last payout address, else the
    address their last deposit came from (funds go back where they came from), else ""."""
    last_destination = (
        Withdrawal.objects.filter(user=user)
        .exclude(destination="")
        .order_by("-id")
        .values_list("destination", flat=True)
    ).first()
    if last_destination:
        return last_destination
    return (
        Deposit.objects.filter(user=user)
        .exclude(from_address="")
        .order_by("-id")
        .values_list("from_address", flat=True)
    ).first() or ""


def payout_address_list(*, user: User) -> QuerySet[PayoutAddress]:
    return PayoutAddress.objects.filter(user=user).order_by("-id")


def payout_address_find(*, user: User, address: str) -> PayoutAddress | None:
    """The user's book entry for `address` (EVM addresses compare case-insensitively; the book is lower-case)."""
    return PayoutAddress.objects.filter(user=user, address=(address or "").lower()).first()


def payout_address_default(*, user: User) -> str:
    """The user's newest registered address that is past its cooling-off, else ""."""
    return (
        PayoutAddress.objects.filter(user=user, usable_from__lte=timezone.now())
        .order_by("-usable_from", "-id")
        .values_list("address", flat=True)
        .first()
    ) or ""


@dataclass
class PayoutComparison:
    """Our withdrawals against the custodian's record of each payout reference."""

    checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def payouts_compare_with_custodian(*, days: int | None = 30) -> PayoutComparison:
    """Ask the payout adapter (`status` by payout reference) about every withdrawal of the last `days`
    (None: all) that is COMPLETED, FAILED or PROCESSING, and name each disagreement:

    - refunded here (FAILED) but paid or pending at the custodian: paid and refunded;
    - COMPLETED here but unknown or failed at the custodian: recorded as paid, never paid;
    - PROCESSING here, its lease over (or flagged for reconciliation), but settled at the custodian:
      not yet recorded (the next `process_withdrawals` resolves it);
    - the custodian holds another amount for the reference than the withdrawal's;
    - the custodian could not be asked (nothing is proven).
    A PROCESSING one inside its lease is being worked on and is skipped.
    """
    result = PayoutComparison()
    rows = Withdrawal.objects.filter(
        status__in=[Withdrawal.Status.COMPLETED, Withdrawal.Status.FAILED, Withdrawal.Status.PROCESSING]
    ).order_by("id")
    if days is not None:
        since = timezone.now() - timedelta(days=days)
        rows = rows.filter(Q(updated_at__gte=since) | Q(status=Withdrawal.Status.PROCESSING))
    adapter = None
    now = timezone.now()
    for withdrawal in rows.iterator():
        in_lease = withdrawal.lease_until is not None and withdrawal.lease_until > now
        if withdrawal.status == Withdrawal.Status.PROCESSING and in_lease and not withdrawal.needs_reconciliation:
            continue
        result.checked += 1
        label = f"withdrawal {withdrawal.pk} ({withdrawal.amount_u} u, reference {withdrawal.reference})"
        try:
            adapter = adapter or payout_adapter_get()  # only when there is something to ask about
            known = adapter.status(withdrawal.reference, withdrawal.tx_hash)
        except PayoutUnavailable as exc:
            result.mismatches.append(f"{label}: the payout service could not be asked ({exc})")
            continue
        paid = known.state in (COMPLETED, PENDING)
        if withdrawal.status == Withdrawal.Status.FAILED and paid:
            result.mismatches.append(
                f"{label} was refunded here (FAILED) but the payout service reports it {known.state}"
                + (f" (tx {known.tx_hash})" if known.tx_hash else "")
                + ": paid and refunded"
            )
        elif withdrawal.status == Withdrawal.Status.COMPLETED and not paid:
            result.mismatches.append(
                f"{label} is COMPLETED here but the payout service reports it {known.state}: recorded as paid, not paid"
            )
        elif withdrawal.status == Withdrawal.Status.PROCESSING and known.state in (COMPLETED, FAILED):
            result.mismatches.append(
                f"{label} is PROCESSING here but the payout service reports it {known.state}: not yet recorded "
                "(process_withdrawals resolves it)"
            )
        if paid and known.amount_u is not None and known.amount_u != withdrawal.amount_u:
            result.mismatches.append(f"{label}: the payout service holds {known.amount_u} u for it")
    return result


# --- Reads for operations (ops reads deposits and withdrawals only through these) ---


@dataclass(frozen=True)
class Totals:
    count: int
    amount_u: int


def _totals(rows: QuerySet[Withdrawal] | QuerySet[Deposit]) -> Totals:
    numbers = rows.aggregate(count=Count("id"), amount=Sum("amount_u"))
    return Totals(count=numbers["count"], amount_u=numbers["amount"] or 0)


def withdrawals_finished_counts(*, since: datetime) -> tuple[int, int]:
    """(finished, failed): withdrawals that ended COMPLETED or FAILED from `since` on."""
    finished = Withdrawal.objects.filter(
        updated_at__gte=since, status__in=[Withdrawal.Status.COMPLETED, Withdrawal.Status.FAILED]
    )
    return finished.count(), finished.filter(status=Withdrawal.Status.FAILED).count()


def withdrawals_waiting_count(*, created_before: datetime) -> int:
    """Withdrawals still QUEUED or PROCESSING that were requested before `created_before`."""
    return Withdrawal.objects.filter(
        status__in=[Withdrawal.Status.QUEUED, Withdrawal.Status.PROCESSING], created_at__lt=created_before
    ).count()


def withdrawals_failed_count(*, since: datetime) -> int:
    return Withdrawal.objects.filter(status=Withdrawal.Status.FAILED, updated_at__gte=since).count()


def withdrawals_pending_total_u() -> int:
    """Σ amount_u of the QUEUED and PROCESSING withdrawals (what withdrawals:pending must hold)."""
    return _totals(
        Withdrawal.objects.filter(status__in=[Withdrawal.Status.QUEUED, Withdrawal.Status.PROCESSING])
    ).amount_u


def deposit_totals(*, start: datetime, end: datetime) -> Totals:
    return _totals(Deposit.objects.filter(created_at__gte=start, created_at__lt=end))


def withdrawal_requested_totals(*, start: datetime, end: datetime) -> Totals:
    return _totals(Withdrawal.objects.filter(created_at__gte=start, created_at__lt=end))


def withdrawal_completed_totals(*, start: datetime, end: datetime) -> Totals:
    return _totals(
        Withdrawal.objects.filter(status=Withdrawal.Status.COMPLETED, updated_at__gte=start, updated_at__lt=end)
    )


def deposits_since(*, since: datetime) -> list[Deposit]:
    """Deposits credited from `since` on, with their user, by id."""
    return list(Deposit.objects.filter(created_at__gte=since).select_related("user").order_by("id"))


def withdrawals_changed_since(*, since: datetime) -> list[Withdrawal]:
    """Withdrawals changed from `since` on, with their user, by id."""
    return list(Withdrawal.objects.filter(updated_at__gte=since).select_related("user").order_by("id"))


def statement_references(*, deposit_ids: list[Any], withdrawal_ids: list[Any]) -> dict[str, dict[str, Any]]:
    """What a statement says of its deposit and withdrawal lines: {"deposit:<id>": {...}, "withdrawal:<id>": {...}}."""
    found: dict[str, dict[str, Any]] = {}
    digits = [int(i) for i in deposit_ids if str(i).isdigit()]
    for pk, tx_id, source in Deposit.objects.filter(pk__in=digits).values_list("pk", "tx_id", "source"):
        found[f"deposit:{pk}"] = {"tx_id": tx_id, "source": source}
    digits = [int(i) for i in withdrawal_ids if str(i).isdigit()]
    rows = Withdrawal.objects.filter(pk__in=digits).values_list("pk", "status", "destination", "tx_hash")
    for pk, status, destination, tx_hash in rows:
        found[f"withdrawal:{pk}"] = {"status": status, "destination": destination, "tx_hash": tx_hash}
    return found


def withdrawals_tables() -> dict[str, str]:
    """The tables withdrawals owns, by role: for whole-database tools (backup provenance, restore loss)."""
    return {"deposits": Deposit._meta.db_table, "withdrawals": Withdrawal._meta.db_table}


def withdrawals_last_writes() -> dict[str, datetime | None]:
    """{"table.column": latest stamp} of every timestamp withdrawals stamps on a write (the restore's quiet clock)."""
    return {
        f"{Deposit._meta.db_table}.created_at": Deposit.objects.aggregate(at=Max("created_at"))["at"],
        f"{DepositIntent._meta.db_table}.created_at": DepositIntent.objects.aggregate(at=Max("created_at"))["at"],
        f"{Withdrawal._meta.db_table}.updated_at": Withdrawal.objects.aggregate(at=Max("updated_at"))["at"],
        f"{SimulatedPayout._meta.db_table}.created_at": SimulatedPayout.objects.aggregate(at=Max("created_at"))["at"],
    }


@dataclass(frozen=True)
class WithdrawalQueue:
    queued: Totals
    processing: Totals  # PROCESSING and not flagged for reconciliation
    reconciliation: Totals  # waiting items staff flagged: only the custodian's answer resolves them
    backlog: int  # waiting items requested before `backlog_before`
    failed: int  # ended FAILED from `failed_since` on


def withdrawals_queue(*, backlog_before: datetime, failed_since: datetime) -> WithdrawalQueue:
    """The payout queue by state, with counts and amounts, in one aggregate statement.

    It reads the waiting rows (QUEUED, PROCESSING) and the FAILED ones updated since `failed_since`,
    both through the status index: the queue, not the history of withdrawals.
    """
    status = Withdrawal.Status
    waiting = Q(status__in=[status.QUEUED, status.PROCESSING])
    queued = Q(status=status.QUEUED, needs_reconciliation=False)
    processing = Q(status=status.PROCESSING, needs_reconciliation=False)
    flagged = waiting & Q(needs_reconciliation=True)
    failed = Q(status=status.FAILED, updated_at__gte=failed_since)
    numbers = Withdrawal.objects.filter(waiting | failed).aggregate(
        queued_n=Count("id", filter=queued),
        queued_u=Sum("amount_u", filter=queued),
        processing_n=Count("id", filter=processing),
        processing_u=Sum("amount_u", filter=processing),
        flagged_n=Count("id", filter=flagged),
        flagged_u=Sum("amount_u", filter=flagged),
        backlog=Count("id", filter=waiting & Q(created_at__lt=backlog_before)),
        failed=Count("id", filter=failed),
    )
    return WithdrawalQueue(
        queued=Totals(count=numbers["queued_n"], amount_u=numbers["queued_u"] or 0),
        processing=Totals(count=numbers["processing_n"], amount_u=numbers["processing_u"] or 0),
        reconciliation=Totals(count=numbers["flagged_n"], amount_u=numbers["flagged_u"] or 0),
        backlog=numbers["backlog"],
        failed=numbers["failed"],
    )
