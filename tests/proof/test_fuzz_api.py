"""Fuzzing: schemathesis over the project's own OpenAPI schema against a live server.

Every operation of /api/schema/ gets generated requests (valid and invalid ones) from an
authenticated, funded bettor while a round is open. The properties: never a 5xx, and every
4xx body is JSON with a machine-readable `code`. Bounded for CI: FUZZ_EXAMPLES per operation
and generation mode (env FUZZ_EXAMPLES overrides), derandomized so a failure replays.
"""

import logging
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from rounds.services import round_open
from tests.factories import UserFactory, fund

pytestmark = [pytest.mark.slow, pytest.mark.money, pytest.mark.django_db(transaction=True)]

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# The token endpoint is fuzzed too, but its throttle would turn later examples into 429s.
ROUND_CODE = "20261223"  # a trading day in the future: its round is OPEN and before lock_at


def _problems(case, response) -> list[str]:
    found = []
    if response.status_code >= 500:
        found.append(f"{response.status_code} server error")
    elif 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body.get("code"):
            found.append(f"{response.status_code} without a `code`: {response.text[:200]!r}")
    if not found:
        return []
    body = case.body if not isinstance(case.body, NotSet) else None
    return [
        (f"{case.operation.label}: {problem[:60]}", f"{case.formatted_path} query={case.query} body={body!r}")
        for problem in found
    ]


def _fuzz(operation, mode, base_url, headers, examples, problems):
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        examples[operation.label] += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        problems.extend(_problems(case, response))

    return fuzz


def test_no_server_errors_and_every_4xx_has_a_code(live_server, capsys):
    # given: a funded bettor with a token, and an open round to bet on
    bettor = UserFactory()
    fund(bettor, 50_000_000_000)
    round_open(code=ROUND_CODE, force=True)
    token = Token.objects.create(user=bettor).key
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    headers = {"Authorization": f"Token {token}"}
    examples: Counter = Counter()
    problems: list[str] = []
    unsatisfiable: list[str] = []
    logging.getLogger("django.request").setLevel(logging.ERROR)  # thousands of expected 4xx lines

    # when: every operation, positive and negative data
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, live_server.url, headers, examples, problems)()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, f"no valid request for {operation.label}"
                unsatisfiable.append(operation.label)  # nothing in it can be made invalid

    # then
    with capsys.disabled():
        print(f"\nschemathesis: {sum(examples.values())} examples over {len(examples)} operations")
        for label, count in sorted(examples.items()):
            print(f"  {count:4d}  {label}")
        print(f"  no invalid request possible: {', '.join(unsatisfiable) or '-'}")
    first = {}
    for kind, example in problems:
        first.setdefault(kind, example)
    assert first == {}, "\n".join(f"{kind}\n    e.g. {example}" for kind, example in sorted(first.items()))
