"""drf-spectacular's AutoSchema with component names that survive the house style.

Every APIView nests its own `InputSerializer` / `OutputSerializer`, so the default
component names ("Input", "Output") collide across views and the schema comes out
wrong. A serializer nested in a class is named after that class instead:
`MeApi.OutputSerializer` -> `MeOutput`, `BetsApi.PlaceInputSerializer` -> `BetsPlaceInput`.
`Meta.ref_name` and `@extend_schema_serializer(component_name=...)` still win.

Operations are tagged by area (common.schema_tags.TAGS, the first path segment after /api/v1/) and titled
from common.schema_tags.SUMMARIES, so /api/docs/ groups them as bets, rounds, me, deposits, withdrawals, ops
and auth, each with a human title.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from common.schema_tags import SUMMARIES, TAGS

# Paths outside /api/v1/ that belong to an area (the operating manual's own URLs).
_LEGACY = {"rounds": "rounds", "simulate": "deposits", "withdrawals": "withdrawals"}


def area_of(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        return parts[2] if parts[2] in TAGS else {"candles": "rounds"}.get(parts[2], "ops")
    return _LEGACY.get(parts[0] if parts else "", "ops")


class AutoSchema(SpectacularAutoSchema):
    def get_tags(self) -> list[str]:
        declared = super().get_tags()
        return declared if any(tag in TAGS for tag in declared) else [area_of(self.path)]

    def get_summary(self) -> str | None:
        path = self.path.removeprefix("/api/v1")
        return super().get_summary() or SUMMARIES.get((self.method.upper(), path))

    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            name = outer.split(".")[-1].removesuffix("Api") + inner
        return name
