from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from betting.models import Bet
from betting.selectors import bet_get, bet_list, user_get
from betting.services import bet_on_behalf_authorize, bet_place, bet_request_digest
from common.api import AmountField, ErrorSerializer, paginated_response
from common.auth import LOCKOUT_MESSAGE, ClientScopedRateThrottle
from common.errors import ApplicationError
from common.parsers import StrictJSONParser
from ledger.selectors import user_balance_u
from ops.metrics import bet_accepted, bet_rejected
from rounds.selectors import bet_receipt_get, round_code_parse


class AuthTokenApi(APIView):
    """Exchange email + password for the bettor's API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientScopedRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False, max_length=256)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="`invalid_credentials` or `invalid`."),
            429: OpenApiResponse(
                ErrorSerializer, description="`throttled` (too many requests) or `locked_out` (too many failures)."
            ),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The request goes to authenticate() so django-axes counts the failure per account and per address
        # (common.auth.client_ip) and refuses a locked-out one before checking the password.
        user = authenticate(
            request, email=data.validated_data["email"].lower(), password=data.validated_data["password"]
        )
        if user is None and getattr(request, "axes_locked_out", False):
            raise ApplicationError(LOCKOUT_MESSAGE, code="locked_out", status=429)
        if user is None:
            raise ApplicationError("Email or password is wrong.", code="invalid_credentials", status=400)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key}).data)


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        email = serializers.EmailField()
        balance_u = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        user = request.user
        body = {"id": user.pk, "email": user.email, "balance_u": user_balance_u(user_id=user.pk)}
        return Response(self.OutputSerializer(body).data)


# --- Bets ---------------------------------------------------------------------------------


class BetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    round = serializers.CharField(source="round.code", help_text="The round's code, YYYYMMDD.")
    side = serializers.ChoiceField(choices=Bet.Side.choices)
    stake_u = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Bet.Status.choices)
    payout_u = serializers.IntegerField()
    created_at = serializers.DateTimeField()


IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 128 printable ASCII characters, unique per bet attempt (a UUID is ideal). Sending the same "
        "key with the same body again returns the same bet (200, identical body) instead of placing a "
        "second one; the same key with a different body is refused with 422 `idempotency_conflict`. "
        "A refused request writes nothing and does not use up its key. Without the header the bet is "
        "accepted but a network retry may place it twice."
    ),
)

_ERRORS = {
    400: OpenApiResponse(
        ErrorSerializer,
        description="Bad input: `invalid`, `invalid_amount`, `stake_too_small`, "
        "`stake_too_large`, `invalid_round_code`, `invalid_idempotency_key`.",
    ),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid token."),
}


class BetsApi(APIView):
    """`/api/v1/bets`: POST places a bet, GET lists the caller's own.

    One class for the two operations only because the API contract puts both on one path;
    each operation keeps its own serializers and calls one selector or service.
    """

    parser_classes = [StrictJSONParser]

    class PlaceInputSerializer(serializers.Serializer):
        side = serializers.ChoiceField(choices=Bet.Side.choices)
        stake_u = AmountField(help_text="Stake in micro-USDC (1 USDC = 1 000 000), a JSON integer.")
        round = serializers.CharField(required=False, help_text="Round code YYYYMMDD; default the current open round.")
        user_id = serializers.UUIDField(
            required=False, help_text="Operators only (`betting.place_bet_on_behalf`): place the bet for this user."
        )

    class ListFilterSerializer(serializers.Serializer):
        round = serializers.CharField(required=False)

    @extend_schema(
        operation_id="bets_place",
        description=(
            "Stake on UP or DOWN in a round (default the current one). The round must be OPEN and before its "
            "lock time. Refusals (nothing is written): 409 `insufficient_funds`, `round_not_open`, "
            "`betting_closed`, `round_stake_limit_exceeded`; 404 `unknown_round`, `no_current_round`; "
            "423 `emergency_stop` / `circuit_breaker` while betting is halted; 422 `idempotency_conflict`."
        ),
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=PlaceInputSerializer,
        responses={
            201: OpenApiResponse(BetOutputSerializer, description="The bet was placed."),
            200: OpenApiResponse(BetOutputSerializer, description="Replay of an Idempotency-Key: the same bet."),
            **_ERRORS,
            403: OpenApiResponse(ErrorSerializer, description="`user_id` without `place_bet_on_behalf`."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_round`, `no_current_round`, `unknown_user`."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="`insufficient_funds`, `round_not_open`, `betting_closed`, `round_stake_limit_exceeded`.",
            ),
            422: OpenApiResponse(ErrorSerializer, description="`idempotency_conflict`."),
            423: OpenApiResponse(ErrorSerializer, description="`emergency_stop` or `circuit_breaker`."),
        },
    )
    def post(self, request):
        try:
            bet, created = self._place(request)
        except (ApplicationError, ValidationError) as exc:
            bet_rejected(exc.code if isinstance(exc, ApplicationError) else "invalid")
            raise
        if created:
            bet_accepted(bet.side)
        response = Response(
            BetOutputSerializer(bet).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="bets_list",
        description="The caller's own bets, newest first, paginated (limit/offset); `?round=YYYYMMDD` filters.",
        parameters=[OpenApiParameter("round", str, description="Only bets of this round (YYYYMMDD).")],
        responses={200: BetOutputSerializer(many=True), **_ERRORS},
    )
    def get(self, request):
        filters = self.ListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        round_code = filters.validated_data.get("round")
        if round_code:
            round_code_parse(code=round_code)
        return paginated_response(
            queryset=bet_list(user=request.user, round_code=round_code),
            serializer_class=BetOutputSerializer,
            request=request,
            view=self,
        )

    def _place(self, request):
        data = self.PlaceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        user, acting_user = request.user, None
        if "user_id" in fields:
            bet_on_behalf_authorize(acting_user=request.user)
            user, acting_user = user_get(user_id=fields["user_id"]), request.user
        return bet_place(
            user=user,
            side=fields["side"],
            stake_u=fields["stake_u"],
            round_code=fields.get("round"),
            idempotency_key=request.headers.get("Idempotency-Key"),
            request_digest=bet_request_digest(
                side=fields["side"],
                stake_u=fields["stake_u"],
                round_code=fields.get("round"),
                user_id=fields.get("user_id"),
            ),
            source="api",
            acting_user=acting_user,
        )


class BetReceiptApi(APIView):
    """The caller's receipt of one of their settled bets: the leaf, its Merkle path, the published settlement.

    Save the body as receipt.json and run `python -m rounds.verify_receipt receipt.json` (standard
    library only): it checks the path against the root of `/api/v1/rounds/<code>/settlement` and
    recomputes the payout from the published pools and fee.
    """

    @extend_schema(
        responses={
            200: OpenApiResponse(description="The receipt (see the README, Receipts)."),
            401: OpenApiResponse(ErrorSerializer, description="Missing or invalid token."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_bet`."),
            409: OpenApiResponse(ErrorSerializer, description="`round_not_settled` or `no_receipts`."),
        },
    )
    def get(self, request, bet_id: int):
        return Response(bet_receipt_get(user=request.user, bet_id=bet_id))


class BetDetailApi(APIView):
    """One of the caller's own bets; another user's bet id answers 404 like a missing one."""

    @extend_schema(
        responses={
            200: BetOutputSerializer,
            401: OpenApiResponse(ErrorSerializer, description="Missing or invalid token."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_bet`."),
        },
    )
    def get(self, request, bet_id: int):
        return Response(BetOutputSerializer(bet_get(user=request.user, bet_id=bet_id)).data)
