"""The rounds read API: public market data (the runbook curls /rounds/current without a token)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, paginated_response
from rounds.exceptions import NoCurrentRound
from rounds.models import Round
from rounds.selectors import round_current_cached, round_get, round_oracle_evidence, round_settlement_public


class RoundOutputSerializer(serializers.Serializer):
    """The fields the API contract fixes for /rounds/current (and the history rows)."""

    code = serializers.CharField()
    symbol = serializers.CharField()
    status = serializers.ChoiceField(choices=Round.Status.choices)
    result = serializers.ChoiceField(choices=Round.Result.choices, allow_null=True)
    lock_at = serializers.DateTimeField()
    settle_at = serializers.DateTimeField()
    fee_bps = serializers.IntegerField()
    up_pool_u = serializers.IntegerField()
    down_pool_u = serializers.IntegerField()
    commit_hash = serializers.CharField()


class _PublicApi(APIView):
    # Public market data: no token needed, and a stale token on a public page is no reason to fail.
    authentication_classes: list = []
    permission_classes = [AllowAny]


class RoundCurrentApi(_PublicApi):
    """The round bettors see now: the open one, else the latest locked one awaiting settlement, else the most
    recently settled one (status SETTLED, with its result)."""

    @extend_schema(
        responses={
            200: RoundOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="`no_current_round`: there has never been a round."),
        },
    )
    def get(self, request):
        body = round_current_cached(render=lambda round_: dict(RoundOutputSerializer(round_).data), shape="api")
        if body is None:
            raise NoCurrentRound("No round has been opened yet; a round opens before 09:00 ET on a trading day.")
        return Response(body)


class RoundListApi(_PublicApi):
    """Round history, newest first, paginated (limit/offset)."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Round.Status.choices, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Round.Status.values, description="Only rounds in this state.")
        ],
        responses={200: RoundOutputSerializer(many=True)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rounds = Round.objects.order_by("-code")
        if "status" in filters.validated_data:
            rounds = rounds.filter(status=filters.validated_data["status"])
        return paginated_response(queryset=rounds, serializer_class=RoundOutputSerializer, request=request, view=self)


class RoundDetailApi(_PublicApi):
    """One round with its result, prices and their sources, pools, commit hash and settlement digest."""

    class OutputSerializer(RoundOutputSerializer):
        rule_version = serializers.IntegerField()
        pool_u = serializers.SerializerMethodField()
        reference_price = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True)
        reference_source = serializers.CharField()
        close_price = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True)
        close_source = serializers.CharField()
        prev_commit_hash = serializers.CharField()
        settlement_digest = serializers.CharField()
        locked_at = serializers.DateTimeField(allow_null=True)
        settled_at = serializers.DateTimeField(allow_null=True)
        oracle_evidence = serializers.SerializerMethodField(
            help_text="Per close (close, reference): the latest quorum check and each source's quote, "
            "accepted or rejected with its reason (null: no source was asked)."
        )

        def get_pool_u(self, round_: Round) -> int:
            return round_.up_pool_u + round_.down_pool_u

        def get_oracle_evidence(self, round_: Round) -> dict:
            return round_oracle_evidence(round_=round_)

    @extend_schema(
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="`invalid_round_code`: not a YYYYMMDD date."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_round`."),
        },
    )
    def get(self, request, code: str):
        return Response(self.OutputSerializer(round_get(code=code)).data)


class RoundSettlementApi(_PublicApi):
    """A settled round's public settlement: pools, fee, dust, the evidence, the receipts' Merkle root.

    No login: anyone may hold the house to it. A bettor's receipt (`/api/v1/bets/<id>/receipt`)
    proves their bet and payout are one leaf under `merkle_root`; `python -m rounds.verify_receipt`
    checks it without trusting the house.
    """

    @extend_schema(
        responses={
            200: OpenApiResponse(description="The settlement (see the README, Receipts)."),
            400: OpenApiResponse(ErrorSerializer, description="`invalid_round_code`."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_round`."),
            409: OpenApiResponse(ErrorSerializer, description="`round_not_settled`."),
        },
    )
    def get(self, request, code: str):
        return Response(round_settlement_public(code=code))
