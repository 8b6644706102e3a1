"""Logs: one line per 4xx, LOG_FORMAT=json with request id, user, round and bet; commands' INFO off stderr."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from common.logging import ContextFilter, JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


def _json_handler(stream):
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user)s %(round)s %(bet)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    return handler


@pytest.fixture
def json_lines():
    import io

    stream = io.StringIO()
    handler = _json_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.mark.django_db
def test_json_lines_name_the_round_a_service_logs_about(json_lines):
    from rounds.services import round_open

    round_open(code="20250908")
    opened = next(line for line in json_lines() if line["message"].startswith("opened round 20250908"))
    assert (opened["round"], opened["level"], opened["logger"]) == ("20250908", "INFO", "rounds.services")
    assert (opened["request_id"], opened["user"], opened["bet"]) == (None, None, None)  # no request here
    assert "context" not in opened


@pytest.mark.django_db
def test_a_log_line_inside_a_request_carries_its_id_and_user(json_lines):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from common.logging import RequestContextMiddleware
    from tests.factories import UserFactory

    def view(request):
        logging.getLogger("betting.test").warning("inside", extra={"bet": 7})
        return HttpResponse("ok")

    request = RequestFactory().get("/x", HTTP_X_REQUEST_ID="abc-1")
    request.user = UserFactory(email="bettor@example.com")  # as authentication leaves it
    response = RequestContextMiddleware(view)(request)

    assert response["X-Request-ID"] == "abc-1"
    line = next(line for line in json_lines() if line["message"] == "inside")
    assert (line["request_id"], line["user"], line["bet"], line["level"]) == (
        "abc-1",
        "bettor@example.com",
        7,
        "WARNING",
    )


@pytest.mark.django_db
def test_a_request_id_is_sent_back_on_every_answer(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_a_hostile_request_id_is_replaced_by_our_own():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from common.logging import RequestContextMiddleware

    response = RequestContextMiddleware(lambda request: HttpResponse("ok"))(
        RequestFactory().get("/x", HTTP_X_REQUEST_ID="a b\nINFO forged")
    )
    assert len(response["X-Request-ID"]) == 32 and response["X-Request-ID"].isalnum()


def test_a_4xx_is_not_logged_again_by_django_request():
    from django.conf import settings

    assert settings.LOGGING["loggers"]["django.request"]["level"] == "ERROR"  # 5xx keep theirs
    assert logging.getLogger("django.request").getEffectiveLevel() == logging.ERROR


@pytest.mark.slow
def test_a_successful_command_prints_its_result_on_stdout_and_no_info_on_stderr(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [python, "manage.py", "open_round", "--code", "20250908"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "Round 20250908 OPEN" in done.stdout
    assert "INFO" not in done.stderr and "opened round" not in done.stderr
