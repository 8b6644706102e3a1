"""Rounds in the admin: browsable, and lock / settle / void as confirmed, reasoned, permissioned actions.

Each action shows a confirmation page with what will happen (pools, fee, winners,
amount paid out, computed by the same SQL as the settlement) and requires a
reason; then it calls the service, whose errors become red messages.
"""

from dataclasses import dataclass
from functools import partial

from django.contrib import admin, messages
from django.db.models import Count

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call
from common.errors import ApplicationError
from marketdata.display import evidence_html
from rounds.models import Round, RoundSettlement
from rounds.selectors import round_oracle_evidence, round_settlement_preview, round_transition_refusal
from rounds.services import MANUAL_RESULTS, round_auto_closes_resolve, round_lock, round_result_request, round_settle


@dataclass
class ActionRow:
    round: Round
    preview: object = None
    error: str = ""


class RoundSettlementInline(admin.StackedInline):
    model = RoundSettlement
    can_delete = False
    extra = 0
    readonly_fields = (
        "result", "requested_result", "up_pool_u", "down_pool_u", "fee_u", "dust_u", "paid_out_u",
        "bets_count", "winners_count", "ledger_batch_id", "digest", "source", "reason", "settled_by", "created_at",
    )  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Round)
class RoundAdmin(ReadOnlyAdmin):
    list_display = [
        "code", "symbol", "status", "result", "up_pool_u", "down_pool_u", "bet_count", "fee_bps",
        "lock_at", "settle_at", "overdue_since",
    ]  # fmt: skip
    list_filter = ["status", "result"]
    search_fields = ["code", "commit_hash", "settlement_digest"]
    ordering = ["-code"]
    inlines = [RoundSettlementInline]
    readonly_fields = ["close_evidence", "reference_evidence"]
    actions = ["lock_rounds", "settle_up", "settle_down", "settle_auto", "void_rounds"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(bet_count=Count("bets"))

    @admin.display(description="bets", ordering="bet_count")
    def bet_count(self, obj) -> int:
        return obj.bet_count

    @admin.display(description="oracle evidence: close")
    def close_evidence(self, obj):
        return evidence_html(round_oracle_evidence(round_=obj)["close"])

    @admin.display(description="oracle evidence: previous close")
    def reference_evidence(self, obj):
        return evidence_html(round_oracle_evidence(round_=obj)["reference"])

    def has_lock_round_permission(self, request) -> bool:
        return request.user.has_perm("rounds.lock_round")

    def has_settle_round_permission(self, request) -> bool:
        return request.user.has_perm("rounds.settle_round")

    def has_void_round_permission(self, request) -> bool:
        return request.user.has_perm("rounds.void_round")

    @admin.action(description="Lock selected rounds…", permissions=["lock_round"])
    def lock_rounds(self, request, queryset):
        return self._confirm(request, queryset, action="lock_rounds", result=None)

    @admin.action(description="Settle selected rounds UP…", permissions=["settle_round"])
    def settle_up(self, request, queryset):
        return self._confirm(request, queryset, action="settle_up", result="UP")

    @admin.action(description="Settle selected rounds DOWN…", permissions=["settle_round"])
    def settle_down(self, request, queryset):
        return self._confirm(request, queryset, action="settle_down", result="DOWN")

    @admin.action(description="Settle selected rounds AUTO (official close)…", permissions=["settle_round"])
    def settle_auto(self, request, queryset):
        return self._confirm(request, queryset, action="settle_auto", result="AUTO")

    @admin.action(description="Void selected rounds (refund every stake)…", permissions=["void_round"])
    def void_rounds(self, request, queryset):
        return self._confirm(request, queryset, action="void_rounds", result="VOID")

    def _confirm(self, request, queryset, *, action: str, result: str | None):
        rounds = list(queryset.order_by("code"))
        form = action_form(request)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            for round_ in rounds:
                if result is None:
                    admin_call(
                        request,
                        partial(round_lock, code=round_.code, acting_user=request.user, reason=reason, source="admin"),
                        success=f"Round {round_.code} locked.",
                    )
                elif result in MANUAL_RESULTS:
                    # Four eyes: a result chosen by hand is a request another operator approves.
                    made = admin_call(
                        request,
                        partial(
                            round_result_request,
                            code=round_.code,
                            result=result,
                            reason=reason,
                            acting_user=request.user,
                            source="admin",
                        ),
                    )
                    if made is not None:
                        self.message_user(
                            request,
                            f"Round {round_.code} {result}: request {made[0].pk} waits for another operator's "
                            "approval (dashboard, pending approvals).",
                            level=messages.WARNING,
                        )
                else:
                    settlement = admin_call(
                        request,
                        partial(
                            round_settle,
                            code=round_.code,
                            result=result,
                            reason=reason,
                            acting_user=request.user,
                            source="admin",
                        ),
                    )
                    if settlement is not None:
                        self.message_user(
                            request,
                            f"Round {round_.code} settled {settlement.result}: paid {settlement.paid_out_u} u to "
                            f"{settlement.winners_count} winning bets, fee {settlement.fee_u} u, "
                            f"dust {settlement.dust_u} u.",
                            level=messages.SUCCESS,
                        )
            return None
        rows = []
        for round_ in rounds:
            row = ActionRow(round=round_)
            # The services own the transitions: ask them why not, rather than re-deriving the rule here.
            refusal = round_transition_refusal(round_=round_, action="lock" if result is None else "settle")
            if refusal is not None:
                row.error = f"{refusal.detail} [{refusal.code}]"
            elif result is not None:
                try:
                    if result == "AUTO":  # ask the price sources now, so the preview shows what AUTO will use
                        round_auto_closes_resolve(round_.code)
                    row.preview = round_settlement_preview(code=round_.code, result=result)
                except ApplicationError as exc:
                    row.error = f"{exc.detail} [{exc.code}]"
            rows.append(row)
        titles = {None: "Lock", "UP": "Settle UP", "DOWN": "Settle DOWN", "AUTO": "Settle AUTO", "VOID": "Void"}
        return action_confirmation(
            self,
            request,
            rounds,
            action=action,
            form=form,
            template="admin/rounds/round/action_confirmation.html",
            title=f"{titles[result]} — please confirm",
            submit_label=f"Confirm: {titles[result]}",
            result=result,
            rows=rows,
        )


@admin.register(RoundSettlement)
class RoundSettlementAdmin(ReadOnlyAdmin):
    list_display = [
        "round", "result", "requested_result", "up_pool_u", "down_pool_u", "fee_u", "dust_u", "paid_out_u",
        "winners_count", "bets_count", "source", "settled_by", "created_at",
    ]  # fmt: skip
    list_filter = ["result", "source"]
    search_fields = ["round__code", "digest", "reason"]
    list_select_related = ["round", "settled_by"]
