"""`simulate --live URL`: drive a running server over HTTP, as bettors' clients would (demos, load).

Modest on purpose: the synthetic bettors (and their API tokens) are made in this process's database,
which must be the server's; then everything goes over HTTP to the round the server has open now:
deposits through /simulate/deposit_webhook (the server needs SIMULATION_ENABLED), bets with an
Idempotency-Key (some retried with the same key, some bad), a few withdrawals. Locking and settling
stay the server's beat's job, on the real clock. Prints the answers by status and code, and latencies.
"""

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator

import requests

from betting.services import user_api_token
from common.errors import ApplicationError
from risk.simulation import STAKE_SIZES_USDC, STAKE_WEIGHTS, USDC, synthetic_bettors
from withdrawals.services import simulated_wallet_address

TIMEOUT_SECONDS = 10


def live_run(*, url: str, bettors: int, seed: int, progress: Callable[[str], None]) -> Iterator[str]:
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ApplicationError(f"--live needs an http(s) URL, got {url!r}.", code="invalid_url")
    session = requests.Session()
    try:
        current = session.get(f"{base}/api/v1/rounds/current", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ApplicationError(f"The server at {base} does not answer: {exc}", code="server_unreachable") from exc
    if current.status_code != 200 or current.json().get("status") != "OPEN":
        raise ApplicationError(
            f"The server at {base} has no OPEN round right now ({current.status_code}): nothing to bet on.",
            code="no_open_round",
        )
    code = current.json()["code"]
    rng = random.Random(seed)
    users = synthetic_bettors(bettors)
    tokens = [user_api_token(user=user) for user in users]
    answers: Counter = Counter()
    latencies: list[float] = []

    def call(method: str, path: str, body: dict, *, token: str | None = None, key: str | None = None) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        if key:
            headers["Idempotency-Key"] = key
        started = time.monotonic()
        try:
            response = session.request(method, f"{base}{path}", json=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            answers[f"{path} error {type(exc).__name__}"] += 1
            return
        latencies.append(time.monotonic() - started)
        detail = ""
        if response.status_code >= 400:
            try:
                detail = " " + str(response.json().get("code", ""))
            except ValueError:
                detail = " (not JSON)"
        answers[f"{method} {path.split('?')[0]} {response.status_code}{detail}"] += 1

    for index, user in enumerate(users):
        call("POST", "/simulate/deposit_webhook", {"user_id": str(user.pk), "amount_u": 200 * USDC})
        if index % 50 == 49:
            progress(f"live: {index + 1}/{len(users)} bettors funded")
    for index, (user, token) in enumerate(zip(users, tokens, strict=True)):
        for seq in range(rng.choice([1, 1, 2, 3])):
            side = "UP" if rng.random() < 0.5 else "DOWN"
            stake_u = rng.choices(STAKE_SIZES_USDC, STAKE_WEIGHTS)[0] * USDC
            key = f"live-{seed}-{code}-{index}-{seq}"
            roll = rng.random()
            body = {"side": side, "stake_u": stake_u, "round": code}
            if roll < 0.03:
                body = {"side": "SIDEWAYS", "stake_u": stake_u}  # a bad request
            call("POST", "/api/v1/bets", body, token=token, key=key)
            if roll > 0.95:
                call("POST", "/api/v1/bets", body, token=token, key=key)  # the client's retry: the same bet
        if rng.random() < 0.05:
            key = f"live-{seed}-{code}-w{index}"
            body = {"amount_u": 10 * USDC, "destination": simulated_wallet_address(user_id=user.pk)}
            call("POST", "/api/v1/withdrawals", body, token=token, key=key)
        if index % 50 == 49:
            progress(f"live: {index + 1}/{len(users)} bettors played")
    yield f"Live run against {base}, round {code}, {len(users)} synthetic bettors, seed {seed}:"
    for answer, count in sorted(answers.items()):
        yield f"  {count:>6}  {answer}"
    if latencies:
        latencies.sort()
        p95 = latencies[int(len(latencies) * 0.95) - 1] if len(latencies) >= 20 else latencies[-1]
        yield (
            f"  {len(latencies)} requests: median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )
