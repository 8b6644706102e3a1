"""Strict JSON for every body the project reads: bounded nesting, UTF-8 only, no lone surrogates.

`json.loads` recurses once per nesting level, so 50 000 `[` raise RecursionError (a 500) before
any serializer sees the body; it also accepts "\\ud800" escapes, which PostgreSQL refuses to store
(another 500, at the database). `json_loads_strict` refuses both up front with a stable code; the
DRF parser below and the deposit webhook (which verifies the signature over the raw bytes and
parses them itself) both use it.
"""

import json
import re
from typing import Any

from rest_framework import parsers

from common.errors import ApplicationError

MAX_JSON_DEPTH = 64  # the deepest body any endpoint takes is 2 levels; 64 leaves room and no recursion risk

# A JSON string (with its escapes; the unrolled form cannot backtrack) or one bracket: scanning these
# skips brackets inside strings.
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class InvalidJson(ApplicationError):
    code = "invalid_json"
    status = 400


class JsonTooDeep(ApplicationError):
    code = "json_too_deep"
    status = 400


class InvalidText(ApplicationError):
    code = "invalid_text"
    status = 400


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_depth_check(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth` without recursing (a scan of the brackets outside strings)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # the common case: too few brackets to be too deep, no scan needed
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(f"The JSON body is nested deeper than {max_depth} levels.")
        elif token in (b"]", b"}"):
            depth -= 1


def _text_check(value: Any) -> None:
    """Every string (keys too) must be encodable as UTF-8 and free of NUL, which PostgreSQL cannot store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidText("A string in the body holds a lone UTF-16 surrogate (\\ud800-\\udfff).") from exc
            if "\x00" in item:
                raise InvalidText("A string in the body holds a NUL character (\\u0000).")


def json_loads_strict(raw: bytes | str) -> Any:
    """Parse a JSON body or raise InvalidJson / JsonTooDeep / InvalidText (400s with a stable code)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    json_depth_check(raw)
    try:
        text = raw.decode("utf-8")  # strict: RFC 8259 bodies are UTF-8, nothing else is guessed
    except UnicodeDecodeError as exc:
        raise InvalidJson("The body is not valid UTF-8.") from exc
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:  # belt and braces: the depth scan should have refused it already
        raise JsonTooDeep(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers beyond the digit limit
        raise InvalidJson(f"The body is not valid JSON: {exc}") from exc
    _text_check(value)
    return value


class StrictJSONParser(parsers.JSONParser):
    """DRF's JSONParser (so DRF reads the body through request.body and its size limit) made strict."""

    def parse(self, stream, media_type=None, parser_context=None):
        return json_loads_strict(stream.read())
