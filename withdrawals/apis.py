from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from betting.selectors import user_get
from common.api import AmountField, paginated_response
from ledger.selectors import user_balance_u
from withdrawals.exceptions import DestinationRequired
from withdrawals.selectors import (
    deposit_intent_list,
    deposit_list,
    payout_address_list,
    withdrawal_get,
    withdrawal_list,
)
from withdrawals.services import (
    deposit_intent_create,
    deposit_simulate,
    deposit_webhook_credit,
    payout_address_register,
    withdrawal_cancel,
    withdrawal_on_behalf_authorize,
    withdrawal_request,
)
from withdrawals.webhooks import webhook_payload_verify


class WithdrawalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.UUIDField()
    amount_u = serializers.IntegerField()
    destination = serializers.CharField()
    status = serializers.CharField()
    needs_approval = serializers.BooleanField()
    tx_hash = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WithdrawalsApi(APIView):
    """POST: queue a withdrawal (cash -> pending). GET: the caller's own withdrawals, newest first.

    Bettors must give `destination` (0x + 40 hex); it joins their address book. A staff user with
    `withdrawals.request_withdrawal_on_behalf` (finance) may pass `user_id` to act for a user (the
    runbook's call; anyone else: 403 `permission_denied`, nothing written) and may leave out
    `destination`: the payout then goes to the user's newest usable registered address, else their
    last payout address, else the address their last deposit came from, else (simulation only) the
    user's simulated wallet; with none of these it is refused (`destination_required`). Unless the
    destination is in the user's address book and past its cooling-off, it is queued with
    `needs_approval` true: nothing is paid until another staff user approves it.
    """

    class InputSerializer(serializers.Serializer):
        amount_u = AmountField()
        destination = serializers.CharField(required=False, allow_blank=True, max_length=128)
        user_id = serializers.CharField(required=False, max_length=64)

    @extend_schema(
        request=InputSerializer,
        responses={201: WithdrawalOutput, 200: WithdrawalOutput},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Optional; the same key and body again returns the same withdrawal (200), "
                "another body with that key is refused (422 `idempotency_conflict`).",
            )
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        user_id = data.validated_data.get("user_id")
        if user_id and user_id != str(request.user.pk):
            withdrawal_on_behalf_authorize(acting_user=request.user)  # before the lookup: refused callers learn nothing
            user = user_get(user_id=user_id)
        destination = data.validated_data.get("destination", "").strip()
        if not destination and not request.user.is_staff:
            raise DestinationRequired("destination is required: the EVM address (0x + 40 hex) to pay.")
        withdrawal, created = withdrawal_request(
            user=user,
            amount_u=data.validated_data["amount_u"],
            destination=destination,
            source="api",
            acting_user=request.user,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        if not created:
            response = Response(WithdrawalOutput(withdrawal).data, status=status.HTTP_200_OK)
            response["Idempotent-Replayed"] = "true"
            return response
        return Response(WithdrawalOutput(withdrawal).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WithdrawalOutput(many=True)})
    def get(self, request):
        return paginated_response(
            queryset=withdrawal_list(user=request.user), serializer_class=WithdrawalOutput, request=request, view=self
        )


class WithdrawalDetailApi(APIView):
    @extend_schema(responses={200: WithdrawalOutput})
    def get(self, request, withdrawal_id: int):
        return Response(WithdrawalOutput(withdrawal_get(withdrawal_id=withdrawal_id, user=request.user)).data)


class WithdrawalCancelApi(APIView):
    """Cancel the caller's own withdrawal while it is still QUEUED: the amount returns to cash."""

    @extend_schema(request=None, responses={200: WithdrawalOutput})
    def post(self, request, withdrawal_id: int):
        withdrawal = withdrawal_cancel(withdrawal_id=withdrawal_id, user=request.user, source="api")
        return Response(WithdrawalOutput(withdrawal).data)


class PayoutAddressesApi(APIView):
    """The caller's own address book. POST registers an address (again: 200, the same entry);
    staff requests for the caller are paid there without a second approval from `usable_from` on
    (PAYOUT_ADDRESS_COOLING_OFF_HOURS after registering). GET lists them, newest first."""

    class InputSerializer(serializers.Serializer):
        address = serializers.CharField(max_length=128)
        # `label` and `source` name Field attributes in the stubs; DRF's metaclass pops declared fields off the class.
        label = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")  # type: ignore[assignment]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        address = serializers.CharField()
        label = serializers.CharField()  # type: ignore[assignment]  # see InputSerializer.label
        created_at = serializers.DateTimeField()
        usable_from = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry, created = payout_address_register(
            user=request.user, address=data.validated_data["address"], label=data.validated_data["label"], source="api"
        )
        return Response(
            self.OutputSerializer(entry).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        return paginated_response(
            queryset=payout_address_list(user=request.user),
            serializer_class=self.OutputSerializer,
            request=request,
            view=self,
        )


class DepositOutput(serializers.Serializer):
    id = serializers.IntegerField()
    tx_id = serializers.CharField()
    amount_u = serializers.IntegerField()
    status = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # see PayoutAddressesApi.InputSerializer.label
    reference = serializers.CharField(source="intent.reference", default="")
    created_at = serializers.DateTimeField()


class DepositsApi(APIView):
    """The caller's own credited deposits, newest first."""

    @extend_schema(responses={200: DepositOutput(many=True)})
    def get(self, request):
        return paginated_response(
            queryset=deposit_list(user=request.user), serializer_class=DepositOutput, request=request, view=self
        )


class DepositIntentsApi(APIView):
    """POST: where to send USDC — the custody address, a reference and an EIP-681 payment URI.
    GET: the caller's intents. The provider's webhook quotes the reference to credit the right user."""

    class InputSerializer(serializers.Serializer):
        amount_u = AmountField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        address = serializers.CharField()
        chain_id = serializers.IntegerField()
        token_address = serializers.CharField()
        amount_u = serializers.IntegerField(allow_null=True)
        payment_uri = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        intent = deposit_intent_create(user=request.user, amount_u=data.validated_data.get("amount_u"))
        return Response(self.OutputSerializer(intent).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        return paginated_response(
            queryset=deposit_intent_list(user=request.user),
            serializer_class=self.OutputSerializer,
            request=request,
            view=self,
        )


class DepositWebhookApi(APIView):
    """The payment provider's callback, authenticated by its signature (no session, no CSRF).

    Header `X-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed by DEPOSIT_WEBHOOK_SECRET>`.
    Body `{"tx_id", "amount_u", "timestamp", "user_id" | "reference", "from_address"?}`. The same
    tx_id delivered again answers 200 with the same deposit and credits nothing more (`credited`
    false). The signature and the timestamp are checked here (`withdrawals.webhooks`), over the raw
    bytes, before the service sees the payload.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        tx_id = serializers.CharField()
        user_id = serializers.UUIDField()
        amount_u = serializers.IntegerField()
        status = serializers.CharField()
        credited = serializers.BooleanField()

    @extend_schema(
        request={"application/json": dict},
        responses={200: OutputSerializer},
        parameters=[OpenApiParameter("X-Signature", str, OpenApiParameter.HEADER, required=True)],
    )
    def post(self, request):
        payload = webhook_payload_verify(raw_body=request.body, signature=request.headers.get("X-Signature", ""))
        deposit, created = deposit_webhook_credit(payload=payload)
        body = {
            "id": deposit.pk,
            "tx_id": deposit.tx_id,
            "user_id": deposit.user_id,
            "amount_u": deposit.amount_u,
            "status": deposit.status,
            "credited": created,
        }
        return Response(self.OutputSerializer(body).data)


class SimulateDepositWebhookApi(APIView):
    """Development only (SIMULATION_ENABLED; 404 otherwise): credit `amount_u` to `user_id`.

    `amount_u` 0 is the runbook's "Balance Inquiry": nothing is credited and the current
    balance is returned. Each call is a new simulated deposit unless `tx_id` is given.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        user_id = serializers.CharField(max_length=64)
        amount_u = AmountField()
        tx_id = serializers.CharField(required=False, max_length=128)

    class OutputSerializer(serializers.Serializer):
        user_id = serializers.CharField()
        amount_u = serializers.IntegerField()
        credited = serializers.BooleanField()
        deposit_id = serializers.IntegerField(allow_null=True)
        tx_id = serializers.CharField(allow_null=True)
        balance_u = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        if not settings.SIMULATION_ENABLED:  # before reading input: off means the path does not exist
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deposit = deposit_simulate(
            user_id=data.validated_data["user_id"],
            amount_u=data.validated_data["amount_u"],
            tx_id=data.validated_data.get("tx_id", ""),
        )
        user_id = deposit.user_id if deposit else user_get(user_id=data.validated_data["user_id"]).pk
        body = {
            "user_id": str(user_id),
            "amount_u": data.validated_data["amount_u"],
            "credited": deposit is not None,
            "deposit_id": deposit.pk if deposit else None,
            "tx_id": deposit.tx_id if deposit else None,
            "balance_u": user_balance_u(user_id=user_id),
        }
        return Response(self.OutputSerializer(body).data)
