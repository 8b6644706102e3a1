from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_audit


class Command(BaseCommand):
    help = "Prove the ledger: every batch and ref sums to zero, cached balances = Σ entries, nothing protected < 0."

    def handle(self, *args, **options):
        report = ledger_audit()
        self.stdout.write(
            f"Checked {report.entries_checked} entries in {report.batches_checked} batches "
            f"and {report.accounts_checked} accounts."
        )
        checks = [
            ("global sum of entries is 0", not report.global_sum_u, [f"global sum {report.global_sum_u} u"]),
            (
                "every batch sums to 0",
                not report.unbalanced_batches,
                [f"batch {batch} sums to {total} u" for batch, total in report.unbalanced_batches],
            ),
            (
                "every ref_id sums to 0",
                not report.unbalanced_refs,
                [f"ref_id {ref} sums to {total} u" for ref, total in report.unbalanced_refs],
            ),
            (
                "every cached balance equals the sum of its entries",
                not report.balance_mismatches,
                [
                    f"account {code}: cached {cached} u, entries {total} u"
                    for code, cached, total in report.balance_mismatches
                ],
            ),
            (
                "no user, pool or pending account is negative",
                not report.negative_accounts,
                [f"account {code} is at {balance} u" for code, balance in report.negative_accounts],
            ),
        ]
        for label, ok, problems in checks:
            self.stdout.write(f"  {'OK  ' if ok else 'FAIL'} {label}")
            if not ok:
                for problem in problems:
                    self.stdout.write(f"       - {problem}")
        if not report.ok:
            raise CommandError("Ledger audit FAILED: see the lines marked FAIL above. [ledger_audit_failed]")
        self.stdout.write(self.style.SUCCESS("Ledger audit passed."))
