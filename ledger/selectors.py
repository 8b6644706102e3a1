import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from ledger.models import Account, LedgerBatch, LedgerEntry


def account_balance_u(*, code: str) -> int:
    return Account.objects.filter(code=code).values_list("balance_u", flat=True).first() or 0


# Account codes other apps name in their lines (only the ledger knows how a code is spelled).
HOUSE_ACCOUNT = Account.HOUSE
WITHDRAWALS_PENDING_ACCOUNT = Account.WITHDRAWALS_PENDING
EXTERNAL_DEPOSITS_ACCOUNT = Account.EXTERNAL_DEPOSITS
EXTERNAL_WITHDRAWALS_ACCOUNT = Account.EXTERNAL_WITHDRAWALS


def account_code_user_cash(*, user_id: Any) -> str:
    return Account.user_cash_code(user_id)


def account_code_round_pool(*, round_code: str) -> str:
    return Account.round_pool_code(round_code)


def account_exists(*, code: str) -> bool:
    return Account.objects.filter(code=code).exists()


def user_balance_u(*, user_id: Any) -> int:
    return account_balance_u(code=Account.user_cash_code(user_id))


def user_statement(*, user_id: Any) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account_id=Account.user_cash_code(user_id)).order_by("-id")


def user_cash_entries_between(
    *, user_id: Any, start: dt.datetime | None, end: dt.datetime
) -> tuple[int, list[LedgerEntry]]:
    """(balance before `start`, the user's cash lines in [start, end) in posting order, with their batch).

    The opening balance is the sum of every earlier line (the ledger is append-only), so opening +
    the lines is the balance at `end` to the micro-USDC.
    """
    entries = LedgerEntry.objects.filter(account_id=Account.user_cash_code(user_id))
    opening_u = 0
    if start is not None:
        opening_u = entries.filter(ts__lt=start).aggregate(total=Sum("amount_u"))["total"] or 0
        entries = entries.filter(ts__gte=start)
    return opening_u, list(entries.filter(ts__lt=end).select_related("batch").order_by("id"))


@dataclass(frozen=True)
class Tvl:
    locked_u: int
    cash_u: int
    pending_withdrawals_u: int


def tvl_get() -> Tvl:
    """Locked = round pools, Total Cash = user cash, Pending = withdrawals:pending (all cached balances).

    One read of the accounts that are not a user's cash (a handful per round: the partial index
    ledger_account_non_user), whatever the number of users or entries: every batch sums to zero, so
    the cached balances do too, and Total Cash is minus the sum of all the others. ledger_audit
    proves that zero sum (and each cached balance against its entries) from the entries themselves.
    """
    sums = dict(
        Account.objects.exclude(kind=Account.Kind.USER_CASH)
        .values("kind")
        .annotate(total=Sum("balance_u"))
        .values_list("kind", "total")
    )
    return Tvl(
        locked_u=sums.get(Account.Kind.ROUND_POOL) or 0,
        cash_u=-sum(total or 0 for total in sums.values()),
        pending_withdrawals_u=sums.get(Account.Kind.PENDING) or 0,
    )


@dataclass
class LedgerAuditReport:
    batches_checked: int = 0
    accounts_checked: int = 0
    entries_checked: int = 0
    global_sum_u: int = 0
    unbalanced_batches: list[tuple[int, int]] = field(default_factory=list)
    unbalanced_refs: list[tuple[str, int]] = field(default_factory=list)
    balance_mismatches: list[tuple[str, int, int]] = field(default_factory=list)
    negative_accounts: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.global_sum_u
            or self.unbalanced_batches
            or self.unbalanced_refs
            or self.balance_mismatches
            or self.negative_accounts
        )


def ledger_audit() -> LedgerAuditReport:
    """Prove the ledger's invariants from the entries themselves, in SQL.

    Σ entries = 0; every batch and every ref sums to zero; every account's cached balance = Σ its
    entries; no protected account below zero. PostgreSQL: one scan of ledger_entries
    (_audit_one_scan); SQLite (the embedded mode's small ledgers): one query per invariant.
    """
    if connection.vendor == "postgresql":
        return _audit_one_scan()
    report = LedgerAuditReport()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(amount_u), 0), COUNT(DISTINCT batch) FROM ledger_entries")
        report.entries_checked, report.global_sum_u, report.batches_checked = cursor.fetchone()
        report.unbalanced_batches = _unbalanced("batch")
        report.unbalanced_refs = _unbalanced("ref_id")
        cursor.execute(
            "SELECT a.code, a.balance_u, COALESCE(s.total, 0) FROM ledger_accounts a "
            "LEFT JOIN (SELECT account, SUM(amount_u) AS total FROM ledger_entries GROUP BY account) s "
            "ON s.account = a.code WHERE a.balance_u != COALESCE(s.total, 0) ORDER BY a.code"
        )
        report.balance_mismatches = [tuple(row) for row in cursor.fetchall()]
    _audit_accounts(report)
    return report


def _unbalanced(column: str) -> list[tuple[Any, int]]:
    """The batches (column "batch") or refs ("ref_id") whose entries do not sum to zero (the runbook's query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, SUM(amount_u) FROM ledger_entries GROUP BY {column} "
            f"HAVING SUM(amount_u) != 0 ORDER BY {column}"
        )
        return [tuple(row) for row in cursor.fetchall()]


def _audit_accounts(report: LedgerAuditReport) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, balance_u FROM ledger_accounts WHERE balance_u < 0 AND kind NOT IN ('external', 'house') "
            "ORDER BY code"
        )
        report.negative_accounts = [tuple(row) for row in cursor.fetchall()]
        cursor.execute("SELECT COUNT(*) FROM ledger_accounts")
        report.accounts_checked = cursor.fetchone()[0]


# Two primes below 2^31: (amount mod p) × (weight mod p) stays inside a bigint, and SUM over bigints is exact.
_FINGERPRINT_PRIMES = (2_147_483_647, 2_147_483_629)


def _audit_one_scan() -> LedgerAuditReport:
    """All the entry-side invariants from one scan of ledger_entries (PostgreSQL).

    The per-account sums are a GROUP BY account (one group per account, small); the per-batch
    and per-ref sums would be millions of groups, so they are proven by fingerprints instead:
    for a fresh random seed, Σ amount × w(batch) mod p, with w a salted 64-bit hash of the batch
    (and of the ref). If every batch sums to zero every fingerprint is 0; if some batch does not,
    a fingerprint is 0 only by a chance of about 1 in p per prime, and there are two primes,
    each with its own seed (about 1 in 4.6e18). Any non-zero fingerprint runs the exact
    GROUP BY queries, which name the batches and refs for the report.
    """
    import secrets

    seeds = [secrets.randbits(62) for _ in _FINGERPRINT_PRIMES]
    (p1, p2), (s1, s2) = _FINGERPRINT_PRIMES, seeds
    fingerprints = ", ".join(
        f"SUM((amount_u % {p}) * (hash{kind}extended({column}, {seed}) % {p})) AS f{index}"
        for index, (column, kind, p, seed) in enumerate(
            [
                ("batch", "int8", p1, s1),
                ("batch", "int8", p2, s2),
                ("ref_id", "text", p1, s1),
                ("ref_id", "text", p2, s2),
            ]
        )
    )
    report = LedgerAuditReport()
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH per_account AS (SELECT account, COUNT(*) AS n, SUM(amount_u) AS total, "
            f"{fingerprints} FROM ledger_entries GROUP BY account) "
            "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(total), 0), "
            + ", ".join(f"COALESCE(SUM(f{i}), 0) % {(p1, p2, p1, p2)[i]}" for i in range(4))
            + ", (SELECT COUNT(*) FROM ledger_batches), "
            "(SELECT json_agg(json_build_array(a.code, a.balance_u, COALESCE(pa.total, 0)) ORDER BY a.code) "
            "FROM ledger_accounts a LEFT JOIN per_account pa ON pa.account = a.code "
            "WHERE a.balance_u <> COALESCE(pa.total, 0)) FROM per_account",
        )
        row = cursor.fetchone()
    entries, total, fp_batch1, fp_batch2, fp_ref1, fp_ref2, batches, mismatches = row
    report.entries_checked, report.global_sum_u, report.batches_checked = int(entries), int(total), int(batches)
    if fp_batch1 or fp_batch2:
        report.unbalanced_batches = _unbalanced("batch")
    if fp_ref1 or fp_ref2:
        report.unbalanced_refs = _unbalanced("ref_id")
    report.balance_mismatches = [(code, int(cached), int(summed)) for code, cached, summed in mismatches or []]
    _audit_accounts(report)
    return report


# --- Reads for operations (ops reads the ledger only through these) ------------


def ledger_unbalanced_batch_count() -> int:
    """How many batches do not sum to zero (must be 0): one aggregate, for the metrics scrape."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT batch FROM {LedgerEntry._meta.db_table} "
            "GROUP BY batch HAVING SUM(amount_u) != 0) t"
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class HouseTotals:
    net_u: int  # every house entry: its P&L
    fees_u: int  # the settlement fees and rounding dust among them


def house_totals_u(*, start: dt.datetime, end: dt.datetime | None = None) -> HouseTotals:
    """The house's entries in [start, end) (end None: up to now)."""
    entries = LedgerEntry.objects.filter(account_id=Account.HOUSE, ts__gte=start)
    if end is not None:
        entries = entries.filter(ts__lt=end)
    totals = entries.aggregate(net=Sum("amount_u"), fees=Sum("amount_u", filter=Q(ref_type="settlement")))
    return HouseTotals(net_u=totals["net"] or 0, fees_u=totals["fees"] or 0)


def house_totals_by_day_u(*, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> dict[dt.date, HouseTotals]:
    """{local day: the house's totals} for the days in [start, end) that have house entries."""
    rows = (
        LedgerEntry.objects.filter(account_id=Account.HOUSE, ts__gte=start, ts__lt=end)
        .annotate(day=TruncDate("ts", tzinfo=tz))
        .values("day")
        .annotate(net=Sum("amount_u"), fees=Sum("amount_u", filter=Q(ref_type="settlement")))
    )
    return {row["day"]: HouseTotals(net_u=row["net"] or 0, fees_u=row["fees"] or 0) for row in rows}


def entries_sum_u(*, accounts: list[str], ref_type: str, ref_ids: list[str] | None = None) -> int:
    """Σ amount_u of the entries on `accounts` with `ref_type` (and one of `ref_ids`, if given)."""
    entries = LedgerEntry.objects.filter(account_id__in=list(accounts), ref_type=ref_type)
    if ref_ids is not None:
        entries = entries.filter(ref_id__in=[str(ref) for ref in ref_ids])
    return entries.aggregate(total=Sum("amount_u"))["total"] or 0


def round_pool_balances_u(*, round_codes: list[str]) -> dict[str, int]:
    """{round code: its pool account's cached balance} (a round without a pool account is absent)."""
    by_account = {Account.round_pool_code(code): code for code in round_codes}
    return {
        by_account[account]: balance_u
        for account, balance_u in Account.objects.filter(code__in=list(by_account)).values_list("code", "balance_u")
    }


def withdrawals_pending_balance_u() -> int:
    return account_balance_u(code=Account.WITHDRAWALS_PENDING)


@dataclass(frozen=True)
class CashTotals:
    cached_u: int  # Σ cached balances of the users' cash accounts
    entries_u: int  # Σ of their entries


def user_cash_totals_u() -> CashTotals:
    cached = Account.objects.filter(kind=Account.Kind.USER_CASH).aggregate(total=Sum("balance_u"))["total"]
    entries = LedgerEntry.objects.filter(account__kind=Account.Kind.USER_CASH).aggregate(total=Sum("amount_u"))
    return CashTotals(cached_u=cached or 0, entries_u=entries["total"] or 0)


def tvl_entries_by_day_u(*, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> tuple[int, dict[dt.date, int]]:
    """TVL from the entries: (the total before `start`, {local day: the change that day} in [start, end))."""
    kinds = [Account.Kind.USER_CASH, Account.Kind.ROUND_POOL, Account.Kind.PENDING]
    entries = LedgerEntry.objects.filter(account__kind__in=kinds)
    before_u = entries.filter(ts__lt=start).aggregate(total=Sum("amount_u"))["total"] or 0
    per_day = dict(
        entries.filter(ts__gte=start, ts__lt=end)
        .annotate(day=TruncDate("ts", tzinfo=tz))
        .values("day")
        .annotate(total=Sum("amount_u"))
        .values_list("day", "total")
    )
    return before_u, per_day


def ledger_batches_since(*, since: dt.datetime) -> list[tuple[int, str]]:
    """(batch id, ref_type) of the batches written from `since` on."""
    return list(LedgerBatch.objects.filter(created_at__gte=since).values_list("id", "ref_type"))


def ledger_tables() -> dict[str, str]:
    """The tables the ledger owns, by role: for whole-database tools (backup provenance, restore loss)."""
    return {
        "accounts": Account._meta.db_table,
        "batches": LedgerBatch._meta.db_table,
        "entries": LedgerEntry._meta.db_table,
    }


def ledger_last_writes() -> dict[str, dt.datetime | None]:
    """{"table.column": latest stamp}: every money movement is a batch (its entries share its transaction).

    The biggest table: its newest rows by primary key (indexed), not a scan of the column.
    """
    stamps = LedgerBatch.objects.order_by("-pk").values_list("created_at", flat=True)[:100]
    return {f"{LedgerBatch._meta.db_table}.created_at": max(stamps, default=None)}
