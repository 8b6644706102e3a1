from django.core.management.base import BaseCommand, CommandError

from ops.reports import reconcile


class Command(BaseCommand):
    help = (
        "Reconcile ledger vs cached balances vs open round pools vs pending withdrawals vs the payout service's "
        "record of each recent withdrawal; non-zero exit on mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--payout-days",
            type=int,
            default=30,
            help="compare withdrawals of the last N days with the payout service (0: all; default 30)",
        )

    def handle(self, *args, payout_days: int, **options):
        if payout_days < 0:
            raise CommandError("--payout-days must be 0 (all) or a positive whole number. [invalid_days]")
        result = reconcile(payout_days=payout_days or None)
        for label, ok, problems in result.checks:
            self.stdout.write(f"  {'OK  ' if ok else 'FAIL'} {label}")
            for problem in problems:
                self.stdout.write(f"       - {problem}")
        if not result.ok:
            raise CommandError("Reconciliation FAILED: see the lines marked FAIL above. [reconcile_failed]")
        self.stdout.write(self.style.SUCCESS("Reconciled: every view of the money agrees."))
