from common.errors import ApplicationError


class MarketDataError(ApplicationError):
    code = "marketdata_error"


class InvalidPrice(MarketDataError):
    code = "invalid_price"


class InvalidSymbol(MarketDataError):
    code = "invalid_symbol"


class InvalidDate(MarketDataError):
    code = "invalid_date"


class CloseNotYet(MarketDataError):
    code = "close_not_yet"


class UnknownSymbol(MarketDataError):
    code = "unknown_symbol"
    status = 404
