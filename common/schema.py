"""drf-spectacular's AutoSchema with component names that survive the house style.

Every APIView nests its own `InputSerializer` / `OutputSerializer`, so the default
component names ("Input", "Output") collide across views and the schema comes out
wrong. A serializer nested in a class is named after that class instead:
`MeApi.OutputSerializer` -> `MeOutput`, `BetsApi.PlaceInputSerializer` -> `BetsPlaceInput`.
`Meta.ref_name` and `@extend_schema_serializer(component_name=...)` still win.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            name = outer.split(".")[-1].removesuffix("Api") + inner
        return name
