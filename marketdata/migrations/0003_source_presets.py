"""Ready-made price sources: three end-of-day vendors (disabled until an operator adds a key) and the manual one."""

from django.db import migrations

PRESETS = [
    {
        "name": "stooq",
        "kind": "csv",
        "enabled": False,
        "timeout_ms": 5000,
        "notes": "Stooq daily CSV (no key). Index symbols are prefixed with ^.",
        "config": {
            "close_url": "https://stooq.com/q/d/l/?s={symbol}&i=d&d1={yyyymmdd}&d2={yyyymmdd}",
            "quote_url": "https://stooq.com/q/l/?s={symbol}&f=sd2t2c&h&e=csv",
            "date_column": "Date",
            "time_column": "Time",
            "price_column": "Close",
            "symbol_map": {"NDX": "^ndx", "IXIC": "^ndq"},
        },
    },
    {
        "name": "alphavantage",
        "kind": "http_json",
        "enabled": False,
        "timeout_ms": 5000,
        "notes": "Alpha Vantage TIME_SERIES_DAILY / GLOBAL_QUOTE; set ALPHAVANTAGE_API_KEY.",
        "config": {
            "close_url": "https://www.alphavantage.co/query?function=TIME_SERIES_DAILY&symbol={symbol}&apikey={key}",
            "price_path": ["Time Series (Daily)", "{date}", "4. close"],
            "ts_path": None,
            "quote_url": "https://www.alphavantage.co/query?function=GLOBAL_QUOTE&symbol={symbol}&apikey={key}",
            "quote_price_path": ["Global Quote", "05. price"],
            "quote_ts_path": ["Global Quote", "07. latest trading day"],
            "key_env": "ALPHAVANTAGE_API_KEY",
        },
    },
    {
        "name": "twelvedata",
        "kind": "http_json",
        "enabled": False,
        "timeout_ms": 5000,
        "notes": "Twelve Data time_series / quote; set TWELVEDATA_API_KEY (sent as Authorization: apikey KEY).",
        "config": {
            "close_url": "https://api.twelvedata.com/time_series?symbol={symbol}&interval=1day&date={date}",
            "price_path": ["values", 0, "close"],
            "ts_path": ["values", 0, "datetime"],
            "quote_url": "https://api.twelvedata.com/quote?symbol={symbol}",
            "quote_price_path": ["close"],
            "quote_ts_path": ["timestamp"],
            "auth_header": "Authorization",
            "auth_format": "apikey {key}",
            "auth_env": "TWELVEDATA_API_KEY",
        },
    },
    {
        "name": "manual",
        "kind": "manual",
        "enabled": True,
        "timeout_ms": 5000,
        "notes": "Operators: set_close or the admin, with who and why in the audit log. A manual close wins.",
        "config": {},
    },
]


def presets_create(apps, schema_editor):
    PriceSource = apps.get_model("marketdata", "PriceSource")
    for preset in PRESETS:
        PriceSource.objects.get_or_create(name=preset["name"], defaults=preset)


def presets_remove(apps, schema_editor):
    apps.get_model("marketdata", "PriceSource").objects.filter(name__in=[p["name"] for p in PRESETS]).delete()


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0002_price_sources_ticks_closes")]

    operations = [migrations.RunPython(presets_create, presets_remove)]
