"""Times operators read are America/New_York with the zone named (STYLE.md): the admin renders every datetime
in the market's zone; config/formats/en/formats.py names the zone. The API keeps ISO 8601 in UTC."""

from django.utils import timezone

from common.times import market_zone


class MarketTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        timezone.activate(market_zone())
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
