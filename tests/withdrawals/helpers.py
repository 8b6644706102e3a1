import json
import time
import uuid

from withdrawals.webhooks import webhook_signature

ADDRESS = "0x" + "ab" * 20


def webhook_body(**fields) -> bytes:
    payload = {"tx_id": f"tx-{uuid.uuid4()}", "timestamp": int(time.time()), **fields}
    return json.dumps(payload).encode()


def post_webhook(client, body: bytes, *, signature: str | None = None):
    return client.post(
        "/api/v1/deposits/webhook",
        data=body,
        content_type="application/json",
        HTTP_X_SIGNATURE=webhook_signature(raw_body=body) if signature is None else signature,
    )
