"""The deposit webhook's transport: is this body the provider's, and is it fresh? Then it is a payload.

The API view calls `webhook_payload_verify` on the raw request body before anything else and hands
the parsed dict to `deposit_webhook_credit`; the service never sees a signature or a timestamp.
The order of the refusals is the contract the provider sees:

    X-Signature wrong         -> 401 invalid_signature  (the body is not even parsed)
    body not JSON or UTF-8    -> 400 invalid_webhook
    nested too deep           -> 400 json_too_deep      (refused before parsing, as on every JSON endpoint)
    a lone surrogate or NUL   -> 400 invalid_text
    body not a JSON object    -> 400 invalid_webhook
    timestamp missing or old  -> 400 stale_timestamp    (a replayed delivery)
"""

import hashlib
import hmac
import time
from typing import Any

from django.conf import settings

from common.parsers import InvalidJson, json_loads_strict
from withdrawals.exceptions import InvalidSignature, InvalidWebhook, StaleWebhook


def webhook_signature(*, raw_body: bytes, secret: str | None = None) -> str:
    """The X-Signature header value a provider sends: "sha256=" + hex HMAC-SHA256 of the raw body."""
    key = (settings.DEPOSIT_WEBHOOK_SECRET if secret is None else secret).encode()
    return "sha256=" + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def webhook_payload_verify(*, raw_body: bytes, signature: str) -> dict[str, Any]:
    """The signed, fresh JSON object in `raw_body`, or the refusal above.

    The signature is checked over the bytes as sent, so they are parsed here (with the project's
    strict loader: bounded depth, strict UTF-8, no lone surrogates) rather than by DRF.
    """
    expected = webhook_signature(raw_body=raw_body)
    given = (signature or "").strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given  # some providers send the bare hex digest
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise InvalidSignature("The X-Signature header does not match the body.")
    try:
        payload = json_loads_strict(raw_body)
    except InvalidJson as exc:
        raise InvalidWebhook(exc.detail) from exc
    if not isinstance(payload, dict):
        raise InvalidWebhook("The body must be a JSON object.")
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise StaleWebhook("The signed payload needs an integer 'timestamp' (unix seconds).")
    if abs(time.time() - timestamp) > settings.DEPOSIT_WEBHOOK_TOLERANCE_SECONDS:
        raise StaleWebhook(
            f"The webhook timestamp is more than {settings.DEPOSIT_WEBHOOK_TOLERANCE_SECONDS}s from now (replay?)."
        )
    return payload
