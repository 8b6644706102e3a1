import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages

from common.admin import ReadOnlyAdmin, action_confirmation, action_form, admin_call
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.services import ledger_manual_adjust, ledger_manual_adjust_request


class ManualAdjustForm(forms.Form):
    direction = forms.ChoiceField(choices=[("credit", "Credit the user (house pays)"), ("debit", "Debit the user")])
    amount_u = forms.IntegerField(min_value=1, label="Amount (micro-USDC)")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)
    idempotency_key = forms.CharField(widget=forms.HiddenInput)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "kind", "owner", "balance_u", "created_at"]
    list_filter = ["kind"]
    search_fields = ["code", "owner__email"]
    actions = ["manual_adjust"]

    def has_manual_adjust_permission(self, request) -> bool:
        return request.user.has_perm("ledger.manual_adjust")

    @admin.action(description="Manual credit/debit against the house…", permissions=["manual_adjust"])
    def manual_adjust(self, request, queryset):
        accounts = list(queryset)
        if len(accounts) != 1 or accounts[0].kind != Account.Kind.USER_CASH:
            self.message_user(request, "Select exactly one user cash account.", level=messages.ERROR)
            return None
        account = accounts[0]
        form = action_form(request, ManualAdjustForm, initial={"idempotency_key": str(uuid.uuid4())})
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            if data["amount_u"] > settings.FOUR_EYES_THRESHOLD_U:
                request_made = admin_call(
                    request,
                    lambda: ledger_manual_adjust_request(
                        user=account.owner,
                        amount_u=data["amount_u"],
                        direction=data["direction"],
                        reason=data["reason"],
                        acting_user=request.user,
                        source="admin",
                    ),
                )
                if request_made is not None:
                    self.message_user(
                        request,
                        f"Above {settings.FOUR_EYES_THRESHOLD_U} u: request {request_made[0].pk} waits for another "
                        "finance user's approval (dashboard, pending approvals).",
                        level=messages.WARNING,
                    )
                return None
            posted = admin_call(
                request,
                lambda: ledger_manual_adjust(
                    user=account.owner,
                    amount_u=data["amount_u"],
                    direction=data["direction"],
                    reason=data["reason"],
                    acting_user=request.user,
                    source="admin",
                    idempotency_key=f"admin-adjust:{data['idempotency_key']}",
                ),
            )
            if posted is not None:
                self.message_user(
                    request,
                    f"Posted batch {posted.batch.pk}: {data['direction']} {data['amount_u']} u to {account.code}.",
                )
            return None
        return action_confirmation(
            self,
            request,
            accounts,
            action="manual_adjust",
            form=form,
            template="admin/ledger/manual_adjust.html",
            title=f"Manual credit/debit of {account.code}",
            submit_label="Confirm and post",
            account=account,
            house=Account.objects.get(code=Account.HOUSE),
        )


@admin.register(LedgerBatch)
class LedgerBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "ref_type", "ref_id", "idempotency_key", "created_by", "created_at"]
    list_filter = ["ref_type"]
    search_fields = ["=id", "ref_id", "idempotency_key", "memo"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "ts", "account", "amount_u", "ref_type", "ref_id", "batch"]
    list_filter = ["ref_type"]
    search_fields = ["account__code", "ref_type", "ref_id", "=batch__id"]
    list_select_related = ["batch"]
