import sys

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.money import format_usdc
from common.progress import step
from common.text import plural
from common.times import format_market_time
from rounds.exceptions import RoundAlreadySettled
from rounds.models import Round, RoundSettlement
from rounds.selectors import REQUESTED_RESULTS, round_get
from rounds.services import MANUAL_RESULTS, SETTLE_PHASES, round_result_approve, round_result_request, round_settle


def already_settled_sentence(round_: Round) -> str:
    """The runbook's check answer: what is recorded, and that nothing changed."""
    return (
        f"Round {round_.code} is already SETTLED ({round_.result}) at {format_market_time(round_.settled_at)}; "
        "nothing changed."
    )


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
    help = (
        "Settle locked round --code with --result AUTO (the oracle) | VOID (emergency: refund every stake, "
        "one operator, alerted) | UP | DOWN (by hand: a four-eyes request another operator approves with "
        "--approve REQUEST_ID). On a settled round, AUTO or the recorded result reports it and exits 0; "
        "another result is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", default="", help="YYYYMMDD")
        parser.add_argument("--result", default="", type=str.upper, choices=["", *REQUESTED_RESULTS])
        parser.add_argument("--approve", default="", metavar="REQUEST_ID", help="approve a manual result request")
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        actor = actor_from_options(options)
        if options["approve"]:
            if options["code"] or options["result"]:
                raise CommandError("--approve takes no --code or --result: the request names them.")
            with command_errors():
                settlement = round_result_approve(
                    request_id=options["approve"], acting_user=actor, source="cli", reason=options["reason"]
                )
            if settlement is None:
                self.stdout.write(f"Approved request {options['approve']}; it needs another approval to settle.")
                return
            return self._report(settlement)
        if not options["code"] or not options["result"]:
            raise CommandError("Give --code and --result (or --approve REQUEST_ID).")
        reason = options["reason"] or f"settle_round --result {options['result']} from the command line"
        bar = _PhaseBar()
        with command_errors():
            try:
                if options["result"] in MANUAL_RESULTS:
                    request, created = round_result_request(
                        code=options["code"], result=options["result"], reason=reason, acting_user=actor, source="cli"
                    )
                    self.stdout.write(
                        self.style.WARNING(
                            f"{'Requested' if created else 'Already requested'}: round {request.target} "
                            f"{request.payload['result']} (request {request.pk}, expires "
                            f"{format_market_time(request.expires_at)}). Another operator approves it with "
                            f"`settle_round --approve {request.pk} --actor EMAIL`."
                        )
                    )
                    return
                with step(f"Settling round {options['code']} ({options['result']})", stream=self.stderr):
                    settlement = round_settle(
                        code=options["code"],
                        result=options["result"],
                        reason=reason,
                        acting_user=actor,
                        source="cli",
                        progress=bar,
                    )
            except RoundAlreadySettled:
                # The manual's step 8 checks completion by asking again: AUTO (or the same result) is answered.
                round_ = round_get(code=options["code"])
                if options["result"] not in ("AUTO", round_.result):
                    raise
                self.stdout.write(self.style.SUCCESS(already_settled_sentence(round_)))
                return
            finally:
                bar.close()
        self._report(settlement)

    def _report(self, settlement: RoundSettlement) -> None:
        self.stdout.write(self.style.SUCCESS(f"✅ Round {settlement.round.code} SETTLED: {settlement.result}"))
        self.stdout.write(f"   UP pool:    {format_usdc(settlement.up_pool_u, exact=True)}")
        self.stdout.write(f"   DOWN pool:  {format_usdc(settlement.down_pool_u, exact=True)}")
        self.stdout.write(
            f"   Fee:        {format_usdc(settlement.fee_u, exact=True)}, "
            f"dust {format_usdc(settlement.dust_u, exact=True)} (to house)"
        )
        if settlement.result == "VOID":
            self.stdout.write(
                f"   Refunded:   {format_usdc(settlement.paid_out_u, exact=True)} to "
                f"{plural(settlement.bets_count, 'bet')} (no fee)"
            )
        else:
            self.stdout.write(
                f"   Paid out:   {format_usdc(settlement.paid_out_u, exact=True)} to "
                f"{plural(settlement.winners_count, 'winning bet')}"
            )
        self.stdout.write(f"   Settled at: {format_market_time(settlement.round.settled_at)}")
        self.stdout.write(f"   Digest:     {settlement.digest}")
