from django.core.management.base import BaseCommand, CommandError

from common.commands import actor_from_options, add_actor_argument, command_errors
from common.money import usdc
from rounds.models import RoundSettlement
from rounds.selectors import REQUESTED_RESULTS
from rounds.services import MANUAL_RESULTS, round_result_approve, round_result_request, round_settle


class Command(BaseCommand):
    help = (
        "Settle locked round --code with --result AUTO (the oracle) | VOID (emergency: refund every stake, "
        "one operator, alerted) | UP | DOWN (by hand: a four-eyes request another operator approves with "
        "--approve REQUEST_ID)."
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
        with command_errors():
            if options["result"] in MANUAL_RESULTS:
                request, created = round_result_request(
                    code=options["code"], result=options["result"], reason=reason, acting_user=actor, source="cli"
                )
                self.stdout.write(
                    self.style.WARNING(
                        f"{'Requested' if created else 'Already requested'}: round {request.target} "
                        f"{request.payload['result']} (request {request.pk}, expires "
                        f"{request.expires_at.isoformat()}). Another operator approves it with "
                        f"`settle_round --approve {request.pk} --actor EMAIL`."
                    )
                )
                return
            settlement = round_settle(
                code=options["code"], result=options["result"], reason=reason, acting_user=actor, source="cli"
            )
        self._report(settlement)

    def _report(self, settlement: RoundSettlement) -> None:
        self.stdout.write(self.style.SUCCESS(f"✅ Round {settlement.round.code} SETTLED: {settlement.result}"))
        self.stdout.write(f"   UP pool:    {settlement.up_pool_u} u ({usdc(settlement.up_pool_u)})")
        self.stdout.write(f"   DOWN pool:  {settlement.down_pool_u} u ({usdc(settlement.down_pool_u)})")
        self.stdout.write(f"   Fee:        {settlement.fee_u} u, dust {settlement.dust_u} u (to house)")
        if settlement.result == "VOID":
            self.stdout.write(f"   Refunded:   {settlement.paid_out_u} u to {settlement.bets_count} bets (no fee)")
        else:
            self.stdout.write(f"   Paid out:   {settlement.paid_out_u} u to {settlement.winners_count} winning bets")
        self.stdout.write(f"   Digest:     {settlement.digest}")
