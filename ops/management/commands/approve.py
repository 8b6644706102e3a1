from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import approvals_pending
from common.commands import actor_from_options, add_actor_argument, command_errors
from ops.approvals import approval_approve
from ops.statement import NEW_YORK


class Command(BaseCommand):
    help = (
        "Four eyes: list the pending requests, or approve one (`approve --approve REQUEST_ID --actor EMAIL`): "
        "a held withdrawal, a manual round result, a manual adjustment or a breaker reset is done at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--approve", default="", metavar="REQUEST_ID", help="the request to approve")
        parser.add_argument("--reason", default="", help="why (recorded in the audit log)")
        add_actor_argument(parser)

    def handle(self, *args, approve: str, reason: str, **options):
        if not approve:
            for row in approvals_pending():
                expires = timezone.localtime(row.expires_at, NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
                self.stdout.write(
                    f"#{row.pk} {row.kind} {row.target} {row.payload} by {row.requested_label}: {row.reason} "
                    f"({getattr(row, 'approvals', 0)}/{row.approvals_required}, expires {expires})"  # annotated count
                )
            return
        actor = actor_from_options(options)
        text = approve.strip()
        request = ApprovalRequest.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
        if request is None:
            raise CommandError(f"No approval request {approve!r}. [approval_not_found]")
        with command_errors():
            approval_approve(request=request, actor=actor, source="cli", reason=reason)
        self.stdout.write(self.style.SUCCESS(f"Approved request {request.pk} ({request.kind} {request.target})."))
