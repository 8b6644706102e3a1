"""Market data read API: candles from ingested ticks (public, like the rounds' market data)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, query_int
from common.errors import ApplicationError
from marketdata.exceptions import UnknownSymbol
from marketdata.selectors import CANDLE_INTERVALS, CANDLE_MAX_LIMIT, candle_symbol_known, candles_get


class CandleSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    open = serializers.DecimalField(max_digits=18, decimal_places=6)
    high = serializers.DecimalField(max_digits=18, decimal_places=6)
    low = serializers.DecimalField(max_digits=18, decimal_places=6)
    close = serializers.DecimalField(max_digits=18, decimal_places=6)
    ticks = serializers.IntegerField()


class CandlesApi(APIView):
    """OHLC candles of a symbol, oldest first, newest last (the last `limit` intervals up to the newest tick)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("interval", str, enum=list(CANDLE_INTERVALS), description="Candle width (default 1h)."),
            OpenApiParameter("limit", int, description=f"How many intervals, 1-{CANDLE_MAX_LIMIT} (default 100)."),
        ],
        responses={
            200: CandleSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="`invalid_interval`, `invalid_parameter` (limit)."),
            404: OpenApiResponse(ErrorSerializer, description="`unknown_symbol`."),
        },
    )
    def get(self, request, symbol: str):
        interval = request.query_params.get("interval", "1h")
        if interval not in CANDLE_INTERVALS:
            raise ApplicationError(
                f"?interval= must be one of {', '.join(CANDLE_INTERVALS)}, got {interval[:20]!r}.",
                code="invalid_interval",
            )
        limit = query_int(request, "limit", default=100, minimum=1, maximum=CANDLE_MAX_LIMIT)
        if len(symbol) > 16 or not candle_symbol_known(symbol=symbol):
            raise UnknownSymbol(f"No market data for symbol {symbol[:16]!r}.")
        candles = candles_get(symbol=symbol, interval=interval, limit=limit)
        return Response(
            {
                "symbol": symbol.upper(),
                "interval": interval,
                "candles": CandleSerializer(candles, many=True).data,
            }
        )
