from functools import partial

from django.contrib import admin, messages

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call, admin_history
from withdrawals.models import Deposit, DepositIntent, PayoutAddress, SimulatedPayout, Withdrawal
from withdrawals.services import withdrawal_approve, withdrawal_fail, withdrawal_resolve, withdrawals_process


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = ["id", "tx_id", "user", "amount_u", "status", "source", "intent", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["=id", "tx_id", "user__email", "intent__reference", "from_address"]
    list_select_related = ["user", "intent"]


@admin.register(DepositIntent)
class DepositIntentAdmin(ReadOnlyAdmin):
    list_display = ["reference", "user", "amount_u", "address", "chain_id", "created_at"]
    search_fields = ["reference", "user__email"]
    list_select_related = ["user"]


@admin.register(PayoutAddress)
class PayoutAddressAdmin(ReadOnlyAdmin):
    """Users' address books: read-only here, since only the user registers an address (their token)."""

    list_display = ["id", "user", "address", "label", "source", "created_at", "usable_from"]
    list_filter = ["source"]
    search_fields = ["=id", "user__email", "address", "label"]
    list_select_related = ["user"]


@admin.register(SimulatedPayout)
class SimulatedPayoutAdmin(ReadOnlyAdmin):
    list_display = ["reference", "state", "amount_u", "destination", "tx_hash", "created_at"]
    list_filter = ["state"]
    search_fields = ["reference", "tx_hash", "destination"]


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "amount_u",
        "status",
        "needs_reconciliation",
        "needs_approval",
        "requested_by",
        "approved_by",
        "approved_at",
        "second_approved_by",
        "second_approved_at",
        "destination",
        "tx_hash",
        "created_at",
    ]
    list_filter = ["status", "needs_reconciliation", "needs_approval"]
    search_fields = ["=id", "=payout_reference", "user__email", "destination", "tx_hash"]
    list_select_related = ["user", "requested_by", "approved_by", "second_approved_by"]
    actions = ["approve", "process_now", "mark_failed", "resolve"]

    def has_approve_withdrawal_permission(self, request) -> bool:
        return request.user.has_perm("withdrawals.approve_withdrawal")

    def has_process_withdrawal_permission(self, request) -> bool:
        return request.user.has_perm("withdrawals.process_withdrawal")

    def has_fail_withdrawal_permission(self, request) -> bool:
        return request.user.has_perm("withdrawals.fail_withdrawal")

    def _confirm(self, request, queryset, *, action: str, title: str, explanation: str, submit_label: str):
        """The confirmation page; returns the reason once the staff user confirmed it."""
        form = action_form(request)
        if form.is_bound and form.is_valid():
            return form.cleaned_data["reason"], None
        page = action_confirmation(
            self,
            request,
            queryset.select_related("user", "approved_by", "second_approved_by"),
            action=action,
            form=form,
            template="admin/withdrawals/confirm_action.html",
            title=title,
            explanation=explanation,
            submit_label=submit_label,
        )
        return None, page

    @admin.action(description="Approve (four-eyes)…", permissions=["approve_withdrawal"])
    def approve(self, request, queryset):
        reason, page = self._confirm(
            request,
            queryset,
            action="approve",
            title="Approve withdrawals",
            explanation="You may not approve a withdrawal you own, requested or already approved.",
            submit_label="Approve",
        )
        if page is not None:
            return page
        for withdrawal in queryset:
            admin_call(
                request,
                partial(
                    withdrawal_approve,
                    withdrawal_id=withdrawal.pk,
                    acting_user=request.user,
                    source="admin",
                    reason=reason,
                ),
                success=f"Withdrawal {withdrawal.pk} approved by {request.user.email}.",
                history=withdrawal,
            )
        return None

    @admin.action(description="Process now (send to the payout adapter)…", permissions=["process_withdrawal"])
    def process_now(self, request, queryset):
        reason, page = self._confirm(
            request,
            queryset,
            action="process_now",
            title="Process withdrawals now",
            explanation=(
                "Approved QUEUED withdrawals are sent to the payout adapter now; PROCESSING ones whose worker "
                "went quiet are first looked up with the payout service; the others are left as they are."
            ),
            submit_label="Send now",
        )
        if page is not None:
            return page
        ids = list(queryset.values_list("pk", flat=True))
        report = admin_call(
            request,
            lambda: withdrawals_process(withdrawal_ids=ids, source="admin", acting_user=request.user, reason=reason),
        )
        if report is not None:
            level = messages.SUCCESS if not (report.failed or report.errors) else messages.WARNING
            done = (
                f"{report.claimed} of {len(ids)} selected were due: {len(report.completed)} completed, "
                f"{len(report.failed)} failed (refunded), {len(report.in_flight)} still processing, "
                f"{len(report.errors)} error(s)."
            )
            self.message_user(request, done, level=level)
            admin_history(request, queryset, f"Process now: {done}")
        return None

    @admin.action(description="Mark failed and refund…", permissions=["fail_withdrawal"])
    def mark_failed(self, request, queryset):
        reason, page = self._confirm(
            request,
            queryset,
            action="mark_failed",
            title="Mark withdrawals failed",
            explanation=(
                "A QUEUED withdrawal is refunded: the amount goes back to the user's cash and the user is emailed "
                "the reason. A PROCESSING one may already be at the payout service, so it is NOT refunded: it is "
                "flagged for reconciliation, never sent again, and completed or refunded on the payout service's "
                "answer."
            ),
            submit_label="Fail and refund",
        )
        if page is not None:
            return page
        for withdrawal in queryset:
            admin_call(
                request,
                partial(
                    withdrawal_fail,
                    withdrawal_id=withdrawal.pk,
                    reason=reason,
                    source="admin",
                    acting_user=request.user,
                ),
                success=f"Withdrawal {withdrawal.pk} failed and refunded.",
                history=withdrawal,
            )
        return None

    @admin.action(description="Resolve with the payout service (ask its status)…", permissions=["process_withdrawal"])
    def resolve(self, request, queryset):
        reason, page = self._confirm(
            request,
            queryset,
            action="resolve",
            title="Resolve withdrawals with the payout service",
            explanation=(
                "For each PROCESSING withdrawal the payout service is asked what became of its payout reference: "
                "paid completes it, failed refunds it, pending leaves it; one it has no record of is refunded "
                "only if it is flagged for reconciliation and was last sent long enough ago."
            ),
            submit_label="Ask the payout service",
        )
        if page is not None:
            return page
        for withdrawal in queryset:
            resolution = admin_call(
                request,
                partial(withdrawal_resolve, withdrawal_id=withdrawal.pk, source="admin", acting_user=request.user),
            )
            if resolution is not None:
                done = (
                    f"Withdrawal {withdrawal.pk}: the payout service reports {resolution.custodian_state}; "
                    f"now {resolution.withdrawal.status} ({resolution.outcome})."
                )
                self.message_user(request, done)
                admin_history(request, withdrawal, done)
        return None
