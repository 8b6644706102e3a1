"""What a restore erases: the live rows a backup does not hold, or holds in an earlier state.

Read from the backup itself (the SQLite file, or the pg_dump archive streamed through
`pg_restore --data-only`), not guessed from its timestamp: a transaction that committed just
after the dump began is not in it although its row is older than the file's name says.
Only live rows stamped after (the backup's time − CANDIDATE_MARGIN) are looked up there; older
ones were committed long before the dump, so the big tables are never compared whole.

The list is canonical text; its SHA-256 is what `restore --confirm-loss` must match, so the
operator confirms exactly what they read, and any change since (a new deposit, another
backup file) makes the confirmation stale.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from betting.selectors import bets_since, betting_tables
from common.money import format_usdc
from ledger.selectors import ledger_batches_since, ledger_tables
from ops.backup_files import backup_rows, backup_taken_at
from rounds.selectors import round_settlements_since, rounds_changed_since, rounds_tables
from withdrawals.selectors import deposits_since, withdrawals_changed_since, withdrawals_tables

# Clock skew between hosts and the time a dump takes to begin: rows this much older than the
# backup's name are still compared against it.
CANDIDATE_MARGIN = timedelta(hours=1)


def usdc_exact(amount_u: int) -> str:
    """1234567890 -> '1,234.56789 USDC (1,234,567,890 u)': what operators read, and the exact integer
    (common.money.format_usdc, the one money format)."""
    return format_usdc(amount_u, exact=True)


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "never"


@dataclass(frozen=True)
class Loss:
    lines: tuple[str, ...]
    summary: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def headline(self) -> str:
        s = self.summary
        return (
            f"{s['deposits']} deposit(s) of {usdc_exact(s['deposits_u'])}, "
            f"{s['withdrawals']} withdrawal(s) of {usdc_exact(s['withdrawals_u'])} "
            f"({s['withdrawals_paid_out']} already paid out), {s['settlements']} settlement(s), "
            f"{s['rounds']} round change(s), {s['bets']} bet(s), {s['ledger_batches']} ledger batch(es)"
        )


def _held(*, path: Path, table: str, ids: list[int], status: str | None = None) -> dict[int, str | None]:
    """{id: status (or None)} for those of `ids` the backup's `table` holds."""
    wanted = set(ids)
    if not wanted:
        return {}
    columns = ["id"] + ([status] if status else [])
    found: dict[int, str | None] = {}
    for row in backup_rows(path=path, table=table, columns=columns):
        key = int(row["id"])
        if key in wanted:
            found[key] = row[status] if status else None
    return found


def _withdrawal_consequence(status: str, was: str | None) -> str:
    if status == "COMPLETED":
        if was is None:
            return "already PAID OUT, and the bettor's cash gets the amount back: paid twice unless recovered"
        return f"already PAID OUT, and it goes back to {was}: it would be paid again"
    if status == "PROCESSING":
        return "may already be at the payout provider: check it there before resuming"
    if was is None:
        return "dropped" + (": the amount returns to the bettor's cash" if status == "QUEUED" else "")
    return f"goes back to {was}"


def restore_loss(*, path: Path, backup_sha256: str) -> Loss:
    """The canonical list of what restoring `path` over the live database erases, with amounts.

    Each table is named by the app that owns it (its `*_tables()` selector), the live rows come
    from its selectors, and the backup's rows from the file.
    """
    path = Path(path)
    taken = backup_taken_at(path=path)
    since = taken - CANDIDATE_MARGIN
    lines = [
        f"Restoring {path.name} (sha256 {backup_sha256}, taken {_when(taken)}) erases what it does not hold:",
    ]

    tables = {**withdrawals_tables(), **rounds_tables(), **betting_tables(), **ledger_tables()}
    deposits = deposits_since(since=since)
    held = _held(path=path, table=tables["deposits"], ids=[d.id for d in deposits])
    lost_deposits = [d for d in deposits if d.id not in held]
    for deposit in lost_deposits:
        lines.append(
            f"  deposit #{deposit.id} {usdc_exact(deposit.amount_u)} to {deposit.user.email}, tx {deposit.tx_id}, "
            f"credited {_when(deposit.created_at)}: the bettor's cash loses it"
        )

    withdrawals = withdrawals_changed_since(since=since)
    held = _held(path=path, table=tables["withdrawals"], ids=[w.id for w in withdrawals], status="status")
    lost_withdrawals = [w for w in withdrawals if w.id not in held or held[w.id] != w.status]
    for withdrawal in lost_withdrawals:
        was = held.get(withdrawal.id)
        where = "not in the backup" if withdrawal.id not in held else f"{was} in the backup"
        lines.append(
            f"  withdrawal #{withdrawal.id} {usdc_exact(withdrawal.amount_u)} of {withdrawal.user.email} "
            f"{withdrawal.status} ({where}): {_withdrawal_consequence(withdrawal.status, was)}"
        )
    paid_out = [w for w in lost_withdrawals if w.status == "COMPLETED"]

    rounds = rounds_changed_since(since=since)
    held = _held(path=path, table=tables["rounds"], ids=[r.id for r in rounds], status="status")
    changed_rounds = [r for r in rounds if r.id not in held or held[r.id] != r.status]
    for round_ in changed_rounds:
        where = "not in the backup" if round_.id not in held else f"goes back to {held[round_.id]}"
        lines.append(f"  round {round_.code} {round_.status}: {where}")

    settlements = round_settlements_since(since=since)
    held = _held(path=path, table=tables["settlements"], ids=[s.id for s in settlements])
    lost_settlements = [s for s in settlements if s.id not in held]
    for settlement in lost_settlements:
        lines.append(
            f"  settlement of round {settlement.round.code} {settlement.result}: paid out "
            f"{usdc_exact(settlement.paid_out_u)} to {settlement.winners_count} of {settlement.bets_count} bet(s), "
            f"fee {usdc_exact(settlement.fee_u)}: the payouts are undone"
        )

    bets = bets_since(since=since)
    held = _held(path=path, table=tables["bets"], ids=[bet_id for bet_id, _ in bets])
    lost_bets = [(bet_id, stake_u) for bet_id, stake_u in bets if bet_id not in held]
    bets_stake_u = sum(stake_u for _, stake_u in lost_bets)
    if lost_bets:
        lines.append(f"  bets: {len(lost_bets)} placed after the backup, {usdc_exact(bets_stake_u)} staked")

    batches = ledger_batches_since(since=since)
    held = _held(path=path, table=tables["batches"], ids=[batch_id for batch_id, _ in batches])
    lost_batches = Counter(ref_type for batch_id, ref_type in batches if batch_id not in held)
    if lost_batches:
        kinds = ", ".join(f"{ref_type} {count}" for ref_type, count in sorted(lost_batches.items()))
        lines.append(f"  ledger batches: {sum(lost_batches.values())} ({kinds})")

    found = len(lost_deposits) + len(lost_withdrawals) + len(changed_rounds) + len(lost_settlements)
    found += len(lost_bets) + sum(lost_batches.values())
    if not found:
        lines.append("  nothing: every deposit, withdrawal, round, settlement, bet and ledger batch is in the backup")
    summary = {
        "deposits": len(lost_deposits),
        "deposits_u": sum(d.amount_u for d in lost_deposits),
        "withdrawals": len(lost_withdrawals),
        "withdrawals_u": sum(w.amount_u for w in lost_withdrawals),
        "withdrawals_paid_out": len(paid_out),
        "withdrawals_paid_out_u": sum(w.amount_u for w in paid_out),
        "settlements": len(lost_settlements),
        "settlements_paid_out_u": sum(s.paid_out_u for s in lost_settlements),
        "rounds": len(changed_rounds),
        "bets": len(lost_bets),
        "bets_stake_u": bets_stake_u,
        "ledger_batches": sum(lost_batches.values()),
    }
    lines.append(
        f"Total: {summary['deposits']} deposit(s) {usdc_exact(summary['deposits_u'])}; "
        f"{summary['withdrawals']} withdrawal(s) {usdc_exact(summary['withdrawals_u'])}, "
        f"{summary['withdrawals_paid_out']} already paid out {usdc_exact(summary['withdrawals_paid_out_u'])}; "
        f"{summary['settlements']} settlement(s) paying {usdc_exact(summary['settlements_paid_out_u'])}; "
        f"{summary['bets']} bet(s) {usdc_exact(bets_stake_u)}; {summary['ledger_batches']} ledger batch(es)."
    )
    return Loss(lines=tuple(lines), summary=summary)
