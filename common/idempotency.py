"""Idempotency keys, one definition for every write a client or a scheduler may retry.

A key is 1 to 128 printable ASCII characters without spaces (it fits every key column). The
"same request" behind a key is the SHA-256 of its canonical JSON (`request_digest`): a replay
with the same digest answers the first result (the service returns `(obj, created=False)`), a
replay with another digest is an `IdempotencyConflict` (422) and writes nothing.
"""

import hashlib
import json
import re
from typing import Any

from common.errors import IdempotencyConflict, InvalidIdempotencyKey

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def idempotency_key_validate(key: Any) -> str:
    """The key itself, or InvalidIdempotencyKey (400) naming the rule."""
    if not (isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key)):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 128 printable ASCII characters without spaces.")
    return key


def request_digest(payload: Any, *, compact: bool = False) -> str:
    """What "the same request" means: the SHA-256 of the payload's canonical JSON (keys sorted).

    json.dumps' default separators, as the ledger and bet digests already stored were made with;
    withdrawals' stored digests were made with compact separators (`compact=True`). Either way the
    bytes must not change: a new form would turn every retry of an older request into a 422.
    """
    separators = (",", ":") if compact else (", ", ": ")
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=separators, default=str).encode()).hexdigest()


def replay_check(*, key: str, stored_digest: str, digest: str, what: str) -> None:
    """An earlier request under `key` exists: it must be the same request, else 422."""
    if stored_digest != digest:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different {what}.")
