"""Issue 9, findings 4 and 6: password guessing and what an error shows.

4. Rotating X-Forwarded-For no longer lifts the login throttle (DRF trusted the header: NUM_PROXIES
   was unset), django-axes locks out per account and per address on the token API and on /admin/login/
   (which had no limit at all), and production refuses to start without TRUSTED_PROXY_COUNT.
6. No unauthenticated 500 shows a technical page: DEBUG is opt-in in every settings module, the
   JSON 404/500 handlers answer in every mode, and WhiteNoise keeps the admin styled with DEBUG off.

Hostile requests: 54 login attempts (wrong passwords with rotated X-Forwarded-For, botnet addresses,
password spraying, forged hops, right passwords while locked; 5 of them PostgreSQL only) and 5 error
probes (two exploding views, an unrouted path, a forged Host, an unrouted path on the live server).
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from betting.models import User
from tests.factories import UserFactory
from tests.proof.test_security import _production_env

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN_URL = "/api/v1/auth/token"
RIGHT = "right-password-1"
LIMIT = 5  # production-like lockout for this file (test settings allow 1000 so the suite logs in freely)


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def lockout(settings):
    """Axes at LIMIT failures; the throttle out of the way so each test sees the lockout alone."""
    settings.AXES_FAILURE_LIMIT = LIMIT
    return settings


def _throttle(monkeypatch, rate: str) -> None:
    # THROTTLE_RATES is read from the settings once, at import: patch it like test_security does.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": rate})


def _guess(client, email: str, password: str, **headers):
    return client.post(TOKEN_URL, {"email": email, "password": password}, format="json", **headers)


# --- the token API: throttle --------------------------------------------------------------------------


def test_rotating_x_forwarded_for_does_not_lift_the_throttle(monkeypatch):
    # given: production's throttle shape, 5 a minute; the lockout far away
    UserFactory(email="victim@example.com", password=RIGHT)
    _throttle(monkeypatch, "5/min")
    client = APIClient()
    # when: 12 wrong passwords, each claiming another address in X-Forwarded-For
    answers = [
        _guess(client, "victim@example.com", f"guess-{i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}") for i in range(12)
    ]
    # then: the header is not the client's identity; the 6th is throttled, and so is the right password
    assert [a.status_code for a in answers] == [400] * 5 + [429] * 7
    assert {a.json()["code"] for a in answers[5:]} == {"throttled"}
    right = _guess(client, "victim@example.com", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert right.status_code == 429
    assert not Token.objects.exists()


# --- the token API: lockout ---------------------------------------------------------------------------


def test_rotating_x_forwarded_for_does_not_lift_the_lockout(lockout):
    UserFactory(email="victim@example.com", password=RIGHT)
    client = APIClient()
    answers = [
        _guess(client, "victim@example.com", f"guess-{i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}") for i in range(8)
    ]
    assert [a.status_code for a in answers] == [400] * (LIMIT - 1) + [429] * (8 - LIMIT + 1)
    assert answers[0].json()["code"] == "invalid_credentials"
    assert {a.json()["code"] for a in answers[LIMIT - 1 :]} == {"locked_out"}
    # the right password is refused while locked, with the same JSON answer (never a 500 or HTML)
    right = _guess(client, "victim@example.com", RIGHT)
    assert right.status_code == 429
    assert right["Content-Type"] == "application/json"
    assert right.json()["code"] == "locked_out"
    assert not Token.objects.exists()
    # every failure was recorded under the real address, not the claimed ones
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_per_account_lockout_holds_across_addresses(lockout):
    # given: a botnet, one address per guess, all against one account
    UserFactory(email="victim@example.com", password=RIGHT)
    UserFactory(email="bystander@example.com", password=RIGHT)
    client = APIClient()
    answers = [_guess(client, "Victim@Example.com ", "nope", REMOTE_ADDR=f"203.0.113.{i}") for i in range(LIMIT)]
    assert [a.status_code for a in answers] == [400] * (LIMIT - 1) + [429]
    # then: the account is locked from a fresh address too (any spelling of the email) ...
    right = _guess(client, "victim@example.com", RIGHT, REMOTE_ADDR="192.0.2.77")
    assert (right.status_code, right.json()["code"]) == (429, "locked_out")
    # ... but only that account: another one logs in from a fresh address
    other = _guess(client, "bystander@example.com", RIGHT, REMOTE_ADDR="192.0.2.78")
    assert other.status_code == 200
    assert other.json()["token"]


def test_per_address_lockout_holds_across_accounts(lockout):
    # given: one address spraying one password over many accounts
    for i in range(LIMIT + 1):
        UserFactory(email=f"user{i}@example.com", password=RIGHT)
    client = APIClient()
    answers = [_guess(client, f"user{i}@example.com", "Winter2026!", REMOTE_ADDR="203.0.113.9") for i in range(LIMIT)]
    assert [a.status_code for a in answers] == [400] * (LIMIT - 1) + [429]
    # then: that address is locked even with a right password for an untouched account
    sprayer = _guess(client, f"user{LIMIT}@example.com", RIGHT, REMOTE_ADDR="203.0.113.9")
    assert (sprayer.status_code, sprayer.json()["code"]) == (429, "locked_out")
    # and the untouched account still logs in from elsewhere
    assert _guess(client, f"user{LIMIT}@example.com", RIGHT, REMOTE_ADDR="192.0.2.5").status_code == 200


def test_with_one_trusted_proxy_the_address_is_the_last_hop_only(lockout, monkeypatch):
    # given: one proxy of ours, which appends the address it saw to X-Forwarded-For
    lockout.TRUSTED_PROXY_COUNT = 1
    lockout.REST_FRAMEWORK = {**lockout.REST_FRAMEWORK, "NUM_PROXIES": 1}
    lockout.AXES_FAILURE_LIMIT = 1000
    _throttle(monkeypatch, "3/min")
    UserFactory(email="victim@example.com", password=RIGHT)
    client = APIClient()
    # when: the client rotates what it writes left of the proxy's hop
    answers = [
        _guess(client, "victim@example.com", "nope", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.7") for i in range(5)
    ]
    # then: one client, throttled after 3, and axes blames the proxy's hop, not the spoofed ones
    assert [a.status_code for a in answers] == [400] * 3 + [429] * 2
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    # another real client (another last hop) is not throttled by the first one's guesses
    assert _guess(client, "victim@example.com", "nope", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 400
    # a last hop that is no address (only a misconfigured count lets a client write it) falls back to
    # REMOTE_ADDR instead of reaching the IP column
    odd = _guess(client, "victim@example.com", "nope", HTTP_X_FORWARDED_FOR="203.0.113.1, not-an-ip")
    assert odd.status_code == 400
    assert AccessAttempt.objects.filter(ip_address="127.0.0.1").exists()


@pytest.mark.postgres
def test_a_forwarded_hop_that_is_no_address_is_no_500_on_postgresql(lockout, monkeypatch):
    """PostgreSQL's inet column refuses text: the address rule must never hand axes one."""
    lockout.TRUSTED_PROXY_COUNT = 1
    lockout.REST_FRAMEWORK = {**lockout.REST_FRAMEWORK, "NUM_PROXIES": 1}
    _throttle(monkeypatch, "4/min")
    client = APIClient(raise_request_exception=False)
    hops = ("not-an-ip", "1.2.3.4.5", "'; DROP TABLE axes_accessattempt; --", "", "::g")
    answers = [_guess(client, "v@example.com", "nope", HTTP_X_FORWARDED_FOR=f"203.0.113.1, {hop}") for hop in hops]
    # all five are REMOTE_ADDR to the throttle and to axes: four wrong passwords, then throttled
    assert [a.status_code for a in answers] == [400] * 4 + [429], [a.content for a in answers]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


# --- the admin login -----------------------------------------------------------------------------------


def _superuser():
    return User.objects.create_superuser(email="admin@example.com", password=RIGHT)


def _admin_login(client, username: str, password: str, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)


def test_admin_login_locks_out_after_the_configured_failures(lockout):
    # given: the superuser; before, 40 wrong passwords in 16 s met no limit at all
    _superuser()
    client = Client()
    # when: wrong passwords from several addresses and spellings of the account
    spellings = ["admin@example.com", "Admin@Example.com", "ADMIN@example.com "]
    answers = [
        _admin_login(client, spellings[i % 3], f"guess-{i}", REMOTE_ADDR=f"203.0.113.{i}") for i in range(LIMIT + 2)
    ]
    # then: the form again for the first LIMIT-1, then a plain 429 page (no form, no traceback)
    assert [a.status_code for a in answers] == [200] * (LIMIT - 1) + [429] * 3
    locked = answers[-1].content.decode()
    assert "Locked out" in locked and "password" not in locked.lower() and "Traceback" not in locked
    # and the right password is refused: no session, no redirect into the admin
    right = _admin_login(client, "admin@example.com", RIGHT, REMOTE_ADDR="192.0.2.1")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_admin_login_works_below_the_limit(lockout):
    _superuser()
    client = Client()
    assert _admin_login(client, "admin@example.com", "typo").status_code == 200
    ok = _admin_login(client, "admin@example.com", RIGHT)
    assert (ok.status_code, ok["Location"]) == (302, "/admin/")


# --- production refuses to start without TRUSTED_PROXY_COUNT ---------------------------------------------


@pytest.mark.slow
def test_production_settings_refuse_to_start_without_trusted_proxy_count():
    env = {key: value for key, value in _production_env().items() if key != "TRUSTED_PROXY_COUNT"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.TRUSTED_PROXY_COUNT)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "Set the TRUSTED_PROXY_COUNT environment variable" in result.stderr
    # with it: the same throttles' and lockout's address rule, from the one variable
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TRUSTED_PROXY_COUNT, settings.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**env, "TRUSTED_PROXY_COUNT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]


@pytest.mark.parametrize(
    ("count", "num_proxies", "sentence"),
    [
        (-1, -1, "TRUSTED_PROXY_COUNT must be the number of proxies"),
        ("1", 1, "TRUSTED_PROXY_COUNT must be the number of proxies"),
        (1, None, "REST_FRAMEWORK['NUM_PROXIES'] must equal TRUSTED_PROXY_COUNT"),
    ],
)
def test_validate_config_names_a_bad_proxy_count(settings, capsys, count, num_proxies, sentence):
    settings.TRUSTED_PROXY_COUNT = count
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    with pytest.raises(CommandError):
        call_command("validate_config", "--no-connect")
    assert sentence in capsys.readouterr().out


# --- finding 6: errors and DEBUG -------------------------------------------------------------------------

TECHNICAL_MARKERS = ("Traceback", "RuntimeError", "/work/", "site-packages", "DJANGO_SETTINGS_MODULE", "SECRET")


def test_an_unauthenticated_500_on_the_api_is_json_with_a_code(monkeypatch):
    # given: a view that blows up (with a message that must not reach the client)
    def explode(*args, **kwargs):
        raise RuntimeError(f"boom at {BASE_DIR}/betting/apis.py SECRET_KEY")

    monkeypatch.setattr("betting.apis.authenticate", explode)
    client = APIClient(raise_request_exception=False)
    # when
    answer = _guess(client, "x@example.com", "whatever")
    # then
    assert answer.status_code == 500
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"code": "server_error", "detail": "Internal error; it has been logged."}
    assert not any(marker in answer.content.decode() for marker in TECHNICAL_MARKERS)


def test_an_unauthenticated_500_on_the_admin_is_a_plain_page(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError(f"boom at {BASE_DIR}/config/settings SECRET_KEY")

    monkeypatch.setattr(LoginView, "get_context_data", explode)  # inside the admin's login view
    answer = Client(raise_request_exception=False).get("/admin/login/")
    assert answer.status_code == 500
    body = answer.content.decode()
    assert "Server Error (500)" in body
    assert not any(marker in body for marker in TECHNICAL_MARKERS)


def test_unrouted_paths_and_bad_hosts_answer_json_outside_the_admin():
    client = Client()
    missing = client.get("/api/v1/no-such-thing")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    bad_host = client.get("/api/v1/rounds", HTTP_HOST="evil.example")
    assert (bad_host.status_code, bad_host.json()["code"]) == (400, "bad_request")
    admin_missing = client.get("/admin/no-such-page/x")
    assert admin_missing.status_code in (302, 404)  # the admin's own catch-all sends anonymous users to log in


def _settings_in_clean_env(module: str, code: str, tmp_path, **extra: str) -> subprocess.CompletedProcess:
    """Import a settings module with no DEBUG (nor anything else of ours) in the environment."""
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": module, "VAR_DIR": str(tmp_path), **extra}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_debug_is_off_when_no_variable_is_set(tmp_path):
    assert not (BASE_DIR / ".env").exists(), "a .env file would be read: this test needs none"
    for module in ("config.settings.local", "config.settings.base"):
        result = _settings_in_clean_env(module, "print(settings.DEBUG)", tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False", module
    # opt-in still works, outside production
    result = _settings_in_clean_env("config.settings.local", "print(settings.DEBUG)", tmp_path, DEBUG="true")
    assert result.stdout.strip() == "True"


def test_admin_css_is_served_with_debug_off():
    """WhiteNoise, not DEBUG's runserver helper, serves /static/: the admin and /api/docs/ stay styled."""
    client = Client()
    css = client.get("/static/admin/css/base.css")
    assert css.status_code == 200
    assert css["Content-Type"].startswith("text/css")
    assert b"".join(css.streaming_content)
    swagger = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert swagger.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.content


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_embedded_default_server_shows_no_technical_page_and_keeps_its_css(tmp_path):
    """`make run`'s web server with a clean environment: DEBUG off, yet styled; errors are JSON."""
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings.local", "VAR_DIR": str(tmp_path)}
    # A migrated database, as `make run` leaves it (unmigrated, every API path is 503 "unavailable").
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )
    log = open(tmp_path / "runserver.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/static/admin/css/base.css", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "runserver.log").read_text()
                time.sleep(0.3)
        css = requests.get(f"{base}/static/admin/css/base.css", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
        login = requests.get(f"{base}/admin/login/", timeout=10)
        assert login.status_code == 200 and "/static/admin/css/base.css" in login.text
        # With DEBUG on, an unrouted path showed the technical 404 page listing every URL pattern.
        missing = requests.get(f"{base}/api/v1/no-such-thing", timeout=10)
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        assert "URLconf" not in missing.text
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
