from django.core.management.base import BaseCommand, CommandError

from common.commands import actor_from_options, add_actor_argument, bounded_int, command_errors
from common.progress import step
from withdrawals.services import withdrawals_process


class Command(BaseCommand):
    help = (
        "Pay approved QUEUED withdrawals through the payout adapter, one claimed item at a time (and resume "
        "PROCESSING ones whose worker went quiet or that staff flagged for reconciliation, asking the adapter's "
        "status first). Refused during an emergency stop."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit",
            type=bounded_int(1, 100_000),
            default=None,
            help="at most this many (default WITHDRAWAL_BATCH_SIZE)",
        )
        add_actor_argument(parser)

    def handle(self, *args, limit: int | None, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be a positive whole number. [invalid_limit]")
        with command_errors(), step("Processing due withdrawals", stream=self.stderr):
            report = withdrawals_process(limit=limit, source="cli", acting_user=actor_from_options(options))
        self.stdout.write(
            f"Processed {report.claimed} withdrawal(s): {len(report.completed)} completed, "
            f"{len(report.failed)} failed, {len(report.in_flight)} still processing, {len(report.errors)} error(s)."
        )
        for label, ids in (("completed", report.completed), ("failed", report.failed), ("errors", report.errors)):
            if ids:
                self.stdout.write(f"  {label}: {', '.join(str(pk) for pk in ids)}")
