import sys

from django.core.management.base import BaseCommand
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.money import usdc
from rounds.selectors import REQUESTED_RESULTS
from rounds.services import SETTLE_PHASES, round_settle

PROGRESS_FROM_BETS = 100_000  # a round with more bets than this shows its settlement's progress


class _PhaseBar:
    """A progress bar on stderr over the settlement's phases, for rounds over PROGRESS_FROM_BETS bets."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, phase: str, bets_count: int) -> None:
        if bets_count <= PROGRESS_FROM_BETS:
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn(f"settling {bets_count:,} bets"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} {task.description}"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=len(SETTLE_PHASES))
        if self.task is not None:
            self.bar.update(self.task, advance=1, description=phase)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class Command(BaseCommand):
    help = "Settle locked round --code with --result AUTO (the oracle) | UP | DOWN | VOID (refund every stake)."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")
        parser.add_argument("--result", required=True, type=str.upper, choices=REQUESTED_RESULTS)
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        reason = options["reason"] or f"settle_round --result {options['result']} from the command line"
        bar = _PhaseBar()
        with command_errors():
            try:
                settlement = round_settle(
                    code=options["code"],
                    result=options["result"],
                    reason=reason,
                    acting_user=actor_from_options(options),
                    source="cli",
                    progress=bar,
                )
            finally:
                bar.close()
        self.stdout.write(self.style.SUCCESS(f"✅ Round {settlement.round.code} SETTLED: {settlement.result}"))
        self.stdout.write(f"   UP pool:    {settlement.up_pool_u} u ({usdc(settlement.up_pool_u)})")
        self.stdout.write(f"   DOWN pool:  {settlement.down_pool_u} u ({usdc(settlement.down_pool_u)})")
        self.stdout.write(f"   Fee:        {settlement.fee_u} u, dust {settlement.dust_u} u (to house)")
        if settlement.result == "VOID":
            self.stdout.write(f"   Refunded:   {settlement.paid_out_u} u to {settlement.bets_count} bets (no fee)")
        else:
            self.stdout.write(f"   Paid out:   {settlement.paid_out_u} u to {settlement.winners_count} winning bets")
        self.stdout.write(f"   Digest:     {settlement.digest}")
