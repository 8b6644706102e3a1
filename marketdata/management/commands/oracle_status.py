from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from common.commands import command_errors
from marketdata.selectors import close_evidence_get, feed_status, market_timezone, trading_day_previous
from marketdata.services import date_parse, symbol_parse


def _ny(value) -> str:
    return "-" if value is None else value.astimezone(market_timezone()).strftime("%Y-%m-%d %H:%M:%S ET")


class Command(BaseCommand):
    help = "The oracle at a glance: each price source's health, each symbol's newest tick, a day's close evidence."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="YYYY-MM-DD: the close to show (default: today's if checked, else the last)")
        parser.add_argument("--symbol", default=None, help="default MARKET_SYMBOL")

    def handle(self, *args, **options):
        with command_errors():
            symbol = symbol_parse(options["symbol"] or settings.MARKET_SYMBOL)
            now = timezone.now()
            today = now.astimezone(market_timezone()).date()
            day = date_parse(options["date"]) if options["date"] else None
        feed = feed_status(now=now)
        t = feed.thresholds
        self.stdout.write(
            f"Now {_ny(now)} (America/New_York), market {'open' if feed.market_open else 'closed'}; "
            f"stale after {t.tick_stale_seconds} s, down after {t.source_down_failures} failures in a row."
        )
        for source in feed.sources:
            rate = "-" if source.success_rate is None else f"{source.success_rate:.0%} of {source.polls}"
            self.stdout.write(
                f"  source {source.name:<14} {'enabled ' if source.enabled else 'disabled'} {source.colour:<6} "
                f"{'up' if source.up else 'down':<4} success {rate:<10} last success {_ny(source.last_success_at)}"
                + (f"  last error: {source.last_error}" if source.last_error else "")
            )
        for feed_symbol in feed.symbols:
            age = "no tick" if feed_symbol.age_seconds is None else f"{int(feed_symbol.age_seconds)} s old"
            self.stdout.write(
                f"  symbol {feed_symbol.symbol:<8} newest tick {_ny(feed_symbol.newest_tick_at)} ({age})"
                f"{'  STALE' if feed_symbol.stale else ''}"
            )
        if day is None:  # today's close once it has been checked, else the previous trading day's
            day = today if close_evidence_get(symbol=symbol, day=today) else trading_day_previous(day=today)
        evidence = close_evidence_get(symbol=symbol, day=day)
        if evidence is None:
            self.stdout.write(f"Close {symbol} {day}: no quorum check (entered by hand, or not asked yet).")
            return
        self.stdout.write(
            f"Close {symbol} {day}: {evidence['outcome']} {evidence['price'] or ''} {evidence['reason']}".rstrip()
            + f" ({evidence['checks']} check(s), latest {_ny(datetime.fromisoformat(evidence['checked_at']))})"
        )
        for quote in evidence["quotes"]:
            verdict = "accepted" if quote["accepted"] else f"rejected {quote['reason']}: {quote['detail']}"
            self.stdout.write(f"  {quote['source']:<14} {quote['price'] or '-':<16} {verdict}")
