from django.core.management.base import BaseCommand, CommandError

from common.commands import command_errors
from rounds.selectors import round_verify


class Command(BaseCommand):
    help = "Recompute a round's commit hash (and its link to the previous round) and settlement digest."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="YYYYMMDD")

    def handle(self, *args, **options):
        with command_errors():
            report = round_verify(code=options["code"])

        def line(ok, label, detail=""):
            self.stdout.write(f"  {'OK      ' if ok else 'MISMATCH'} {label}{detail}")

        self.stdout.write(f"Round {report.code}:")
        line(report.commit_hash_ok, "commit hash", f" {report.stored_commit_hash}")
        if not report.commit_hash_ok:
            self.stdout.write(f"           recomputed {report.computed_commit_hash}")
        line(report.chain_ok, "chain link to previous round", f" ({report.previous_code or 'genesis'})")
        if report.settled:
            line(report.digest_ok, "settlement digest", f" {report.stored_digest}")
            if not report.digest_ok:
                self.stdout.write(f"           recomputed {report.computed_digest}")
            if report.root_ok is None:
                self.stdout.write("  --       receipts Merkle root (settled before receipts, rule_version 1)")
            else:
                line(report.root_ok, "receipts Merkle root", f" {report.stored_root}")
                if not report.root_ok:
                    self.stdout.write(f"           recomputed {report.computed_root}")
        else:
            self.stdout.write("  --       settlement digest (round not settled yet)")
        if not report.ok:
            raise CommandError(f"Round {report.code} does NOT verify: see MISMATCH above.")
        self.stdout.write(self.style.SUCCESS(f"Round {report.code} verifies: match."))
