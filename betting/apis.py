from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from common.api import paginated_response
from common.errors import ApplicationError
from ledger.selectors import user_balance_u, user_statement


class AuthTokenApi(APIView):
    """Exchange email + password for the bettor's API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False, max_length=256)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request, email=data.validated_data["email"].lower(), password=data.validated_data["password"]
        )
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


class MeStatementApi(APIView):
    """The caller's own cash ledger lines, newest first."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        amount_u = serializers.IntegerField()
        ref_type = serializers.CharField()
        ref_id = serializers.CharField()
        batch = serializers.IntegerField(source="batch_id")
        ts = serializers.DateTimeField()

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        return paginated_response(
            queryset=user_statement(user_id=request.user.pk),
            serializer_class=self.OutputSerializer,
            request=request,
            view=self,
        )
