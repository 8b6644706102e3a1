from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Sum

from ledger.models import Account, LedgerEntry


def account_balance_u(*, code: str) -> int:
    return Account.objects.filter(code=code).values_list("balance_u", flat=True).first() or 0


# Account codes other apps name in their lines (only the ledger knows how a code is spelled).
HOUSE_ACCOUNT = Account.HOUSE


def account_code_user_cash(*, user_id: Any) -> str:
    return Account.user_cash_code(user_id)


def account_code_round_pool(*, round_code: str) -> str:
    return Account.round_pool_code(round_code)


def account_exists(*, code: str) -> bool:
    return Account.objects.filter(code=code).exists()


def user_balance_u(*, user_id: Any) -> int:
    return account_balance_u(code=Account.user_cash_code(user_id))


def user_statement(*, user_id: Any):
    return LedgerEntry.objects.filter(account_id=Account.user_cash_code(user_id)).order_by("-id")


@dataclass(frozen=True)
class Tvl:
    locked_u: int
    cash_u: int
    pending_withdrawals_u: int


def tvl_get() -> Tvl:
    """Locked = round pools, Total Cash = user cash, Pending = withdrawals:pending (all cached balances)."""
    sums = dict(
        Account.objects.filter(kind__in=[Account.Kind.ROUND_POOL, Account.Kind.USER_CASH, Account.Kind.PENDING])
        .values("kind")
        .annotate(total=Sum("balance_u"))
        .values_list("kind", "total")
    )
    return Tvl(
        locked_u=sums.get(Account.Kind.ROUND_POOL) or 0,
        cash_u=sums.get(Account.Kind.USER_CASH) or 0,
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
    """Prove the ledger's invariants from the entries themselves, in SQL."""
    report = LedgerAuditReport()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(amount_u), 0), COUNT(DISTINCT batch) FROM ledger_entries")
        report.entries_checked, report.global_sum_u, report.batches_checked = cursor.fetchone()
        cursor.execute(
            "SELECT batch, SUM(amount_u) FROM ledger_entries GROUP BY batch HAVING SUM(amount_u) != 0 ORDER BY batch"
        )
        report.unbalanced_batches = [tuple(row) for row in cursor.fetchall()]
        # The runbook's own integrity query.
        cursor.execute(
            "SELECT ref_id, SUM(amount_u) FROM ledger_entries GROUP BY ref_id HAVING SUM(amount_u) != 0 ORDER BY ref_id"
        )
        report.unbalanced_refs = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT a.code, a.balance_u, COALESCE(s.total, 0) FROM ledger_accounts a "
            "LEFT JOIN (SELECT account, SUM(amount_u) AS total FROM ledger_entries GROUP BY account) s "
            "ON s.account = a.code WHERE a.balance_u != COALESCE(s.total, 0) ORDER BY a.code"
        )
        report.balance_mismatches = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT code, balance_u FROM ledger_accounts WHERE balance_u < 0 AND kind NOT IN ('external', 'house') "
            "ORDER BY code"
        )
        report.negative_accounts = [tuple(row) for row in cursor.fetchall()]
        cursor.execute("SELECT COUNT(*) FROM ledger_accounts")
        report.accounts_checked = cursor.fetchone()[0]
    return report
