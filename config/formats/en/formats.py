# Dates and times as the admin shows them: ISO-like and with the zone named ("2026-12-01 15:59:59 EST").
# The admin renders them in America/New_York (common.middleware.MarketTimeZoneMiddleware).
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s T"
