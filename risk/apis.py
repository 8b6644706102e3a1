"""Risk over HTTP: a bettor's self-exclusion, and the staff's exposure reads."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from betting.selectors import user_get
from common.api import AmountField, ErrorSerializer
from common.errors import permission_require
from risk.exposure import round_exposure, round_exposure_json, user_exposure
from risk.selectors import self_exclusion_current
from risk.services import self_exclusion_create

VIEW_EXPOSURE = "risk.view_exposure"


class SelfExclusionApi(APIView):
    """The caller's self-exclusion: GET what is in force, POST {"days": N} to exclude themself.

    An exclusion can be extended and never shortened or lifted early: a POST ending no later than the
    one in force answers that one (200). Withdrawals keep working while excluded.
    """

    class InputSerializer(serializers.Serializer):
        # The service checks the range; a JSON integer only (no "7", 7.0 or true).
        days = AmountField(error_messages={"invalid": "days must be a whole number (a JSON integer)."})

    class OutputSerializer(serializers.Serializer):
        excluded = serializers.BooleanField()
        starts_at = serializers.DateTimeField(allow_null=True)
        ends_at = serializers.DateTimeField(allow_null=True)

    def _out(self, exclusion) -> dict:
        if exclusion is None:
            return {"excluded": False, "starts_at": None, "ends_at": None}
        return {"excluded": True, "starts_at": exclusion.starts_at, "ends_at": exclusion.ends_at}

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(self._out(self_exclusion_current(user_id=request.user.pk))).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="`invalid` or `invalid_period`."),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exclusion, created = self_exclusion_create(
            user=request.user, days=data.validated_data["days"], acting_user=request.user, source="api"
        )
        return Response(
            self.OutputSerializer(self._out(exclusion)).data, status=status.HTTP_201_CREATED if created else 200
        )


class StaffExposureView(APIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        permission_require(request.user, VIEW_EXPOSURE, detail=f"Exposure is for staff with '{VIEW_EXPOSURE}'.")


class RoundExposureApi(StaffExposureView):
    """A round's exposure (staff with risk.view_exposure): the numbers of `exposure --round CODE --json`."""

    @extend_schema(responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request, code: str):
        return Response(round_exposure_json(round_exposure(code=code)))


class UserExposureApi(StaffExposureView):
    """One bettor's stakes in the unsettled rounds and what each result would pay them (staff)."""

    @extend_schema(responses={200: dict, 403: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request, user_id):
        user = user_get(user_id=user_id)
        rounds = [
            {"round": e.code, "status": e.status, "staked_u": e.staked_u, "payout_if_u": e.payout_if_u}
            for e in user_exposure(user_id=user.pk)
        ]
        return Response({"user_id": str(user.pk), "email": user.email, "rounds": rounds})
