from django.core.management.base import BaseCommand, CommandError

from ops.reports import reconcile


class Command(BaseCommand):
    help = "Reconcile ledger vs cached balances vs open round pools vs pending withdrawals; non-zero exit on mismatch."

    def handle(self, *args, **options):
        result = reconcile()
        for label, ok, problems in result.checks:
            self.stdout.write(f"  {'OK  ' if ok else 'FAIL'} {label}")
            for problem in problems:
                self.stdout.write(f"       - {problem}")
        if not result.ok:
            raise CommandError("Reconciliation FAILED: see the lines marked FAIL above.")
        self.stdout.write(self.style.SUCCESS("Reconciled: every view of the money agrees."))
