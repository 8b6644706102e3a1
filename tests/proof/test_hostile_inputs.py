"""Issue 9, findings 5, 7 and 8: no input reaches a 500 or a traceback, and TRUNCATE cannot empty the ledger.

Every hostile case here used to answer a 500 (RecursionError, "bigint out of range", a surrogate
PostgreSQL refuses, ValueError in the admin's `pk__in`, HTML from Django's own 400) or crash a
command with a traceback. Each must now get a 4xx with a stable `code`, an admin error message,
or a CommandError sentence, and change nothing. HOSTILE_CASES counts what the module sends.
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from audit.models import AuditEvent
from betting.models import Bet, User
from betting.services import user_create
from common.admin import SelectionCheckedAdmin
from common.parsers import MAX_JSON_DEPTH
from ledger.models import Account, LedgerEntry
from rounds.services import round_open
from tests.conftest import api_client_for
from tests.factories import UserFactory, fund
from tests.proof.conftest import run_threads
from withdrawals.models import Deposit, Withdrawal
from withdrawals.webhooks import webhook_signature

REPO = Path(__file__).resolve().parents[2]
ROUND_CODE = "20261223"  # a future trading day: its round is OPEN and before lock_at
DEEP = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


def _written() -> tuple[int, ...]:
    return (
        LedgerEntry.objects.count(),
        Bet.objects.count(),
        Withdrawal.objects.count(),
        Deposit.objects.count(),
        AuditEvent.objects.count(),
        User.objects.count(),
    )


def _assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert response.json()["code"] == code, response.json()


@pytest.fixture
def market(db):
    """An open round, a funded bettor and a staff user, each with an API client."""
    round_open(code=ROUND_CODE)
    bettor = UserFactory()
    fund(bettor, 100_000_000)
    staff = user_create(email="staff@example.com", password="staff-pass-123", is_staff=True)
    return {"bettor": api_client_for(bettor), "staff": api_client_for(staff), "anonymous": APIClient()}


# --- 5a. JSON bodies: depth, UTF-8, surrogates --------------------------------------------------

# Every POST endpoint that reads a body, who may call it, and whether it needs a webhook signature.
JSON_POSTS = [
    ("/api/v1/auth/token", "anonymous", False),
    ("/api/v1/deposits/webhook", "anonymous", True),
    ("/simulate/deposit_webhook", "anonymous", False),
    ("/api/v1/bets", "bettor", False),
    ("/api/v1/withdrawals", "bettor", False),
    ("/withdrawals", "bettor", False),
    ("/api/v1/deposits/intents", "bettor", False),
    ("/api/v1/me/payout-addresses", "bettor", False),
    ("/api/v1/me/self-exclusion", "bettor", False),
    ("/api/v1/ops/emergency-stop", "staff", False),
    ("/api/v1/ops/circuit-breaker", "staff", False),
    ("/api/v1/ops/maintenance", "staff", False),
]
# POST routes that never read a body (the id is in the path).
BODYLESS_POSTS = {"/api/v1/withdrawals/<int:withdrawal_id>/cancel"}


def _routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            found += _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append(("/" + prefix + str(pattern.pattern), pattern.callback))
    return found


def test_the_list_of_json_posts_is_every_api_post_route():
    posts = {
        path
        for path, view in _routes(get_resolver())
        if hasattr(getattr(view, "cls", None), "post") and not path.startswith("/admin/")
    }
    assert posts == {path for path, _, _ in JSON_POSTS} | BODYLESS_POSTS


def _post(market, path: str, who: str, signed: bool, body: bytes, content_type: str = "application/json"):
    headers = {"HTTP_X_SIGNATURE": webhook_signature(raw_body=body)} if signed else {}
    return market[who].generic("POST", path, body, content_type=content_type, **headers)


@pytest.mark.money
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(("path", "who", "signed"), JSON_POSTS)
def test_deeply_nested_json_is_a_400_on_every_post(market, path, who, signed, body):
    before = _written()
    response = _post(market, path, who, signed, body)
    _assert_refused(response, 400, "json_too_deep")
    assert _written() == before


def test_nesting_up_to_the_limit_is_still_parsed(market):
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    response = _post(market, "/api/v1/bets", "bettor", False, body)
    _assert_refused(response, 400, "invalid")  # parsed, then refused by the serializer (not an object)


@pytest.mark.money
@pytest.mark.parametrize(("path", "who", "signed"), JSON_POSTS)
def test_a_body_that_is_not_utf8_is_a_400(market, path, who, signed):
    body = b'{"side": "\xff\xfe", "email": "\xc3(", "amount_u": 1}'
    response = _post(market, path, who, signed, body)
    # the webhook keeps its documented code for a body that is not JSON
    _assert_refused(response, 400, "invalid_webhook" if signed else "invalid_json")


LONE_SURROGATE = "\\ud800"  # the JSON escape; json.loads turns it into a str PostgreSQL cannot store
SURROGATE_BODIES = [
    ("/api/v1/bets", "bettor", False, {"side": LONE_SURROGATE, "stake_u": 1_000_000}),
    ("/api/v1/bets", "bettor", False, {"side": "UP", "stake_u": 1_000_000, "round": LONE_SURROGATE}),
    ("/api/v1/withdrawals", "bettor", False, {"amount_u": 1_000_000, "destination": LONE_SURROGATE}),
    ("/withdrawals", "bettor", False, {"amount_u": 1_000_000, "destination": "0x" + LONE_SURROGATE * 40}),
    ("/api/v1/auth/token", "anonymous", False, {"email": LONE_SURROGATE + "@example.com", "password": "x"}),
    ("/simulate/deposit_webhook", "anonymous", False, {"user_id": "u", "amount_u": 1, "tx_id": LONE_SURROGATE}),
    ("/api/v1/ops/emergency-stop", "staff", False, {"active": True, "reason": "stop " + LONE_SURROGATE}),
    ("/api/v1/deposits/webhook", "anonymous", True, {"tx_id": LONE_SURROGATE, "amount_u": 1, "timestamp": 0}),
    ("/api/v1/bets", "bettor", False, {LONE_SURROGATE: "key", "side": "UP", "stake_u": 1_000_000}),
    ("/api/v1/bets", "bettor", False, {"side": "UP\\u0000", "stake_u": 1_000_000}),  # NUL: PostgreSQL refuses too
]


@pytest.mark.money
@pytest.mark.parametrize(("path", "who", "signed", "fields"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_any_string_is_a_400(market, path, who, signed, fields):
    body = json.dumps(fields).replace("\\\\u", "\\u").encode()  # keep the escapes as escapes
    before = _written()
    response = _post(market, path, who, signed, body)
    _assert_refused(response, 400, "invalid_text")
    assert _written() == before


def test_a_surrogate_pair_is_ordinary_text(market):
    """An astral character arrives as a pair of escapes: that is valid JSON text and passes."""
    body = b'{"side": "\\ud83d\\ude00", "stake_u": 1000000}'
    response = _post(market, "/api/v1/bets", "bettor", False, body)
    _assert_refused(response, 400, "invalid")  # not UP/DOWN: the serializer's refusal, not invalid_text


@pytest.mark.money
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
@pytest.mark.parametrize(("path", "who", "signed"), JSON_POSTS)
def test_a_body_over_the_upload_limit_is_a_413_with_a_code(market, path, who, signed):
    body = json.dumps({"side": "UP", "stake_u": 1, "padding": "x" * 20_000}).encode()
    before = _written()
    response = _post(market, path, who, signed, body)
    _assert_refused(response, 413, "body_too_large")
    assert _written() == before


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=10)
def test_too_many_form_fields_is_a_400_with_a_code(market):
    body = "&".join(f"f{i}=1" for i in range(50))
    response = market["bettor"].generic(
        "POST", "/api/v1/withdrawals", body, content_type="application/x-www-form-urlencoded"
    )
    _assert_refused(response, 400, "too_many_fields")


# --- 5b. Query parameters --------------------------------------------------------------------

PAGINATED = [
    ("/api/v1/rounds", "anonymous"),
    ("/api/v1/bets", "bettor"),
    ("/api/v1/me/statement", "bettor"),
    ("/api/v1/withdrawals", "bettor"),
    ("/withdrawals", "bettor"),
    ("/api/v1/deposits", "bettor"),
    ("/api/v1/deposits/intents", "bettor"),
]
BAD_INTEGERS = [str(2**63), str(2**64 + 1), "-1", "abc", "1e9", "1.5", "0x10", " ", "9" * 5000, "١٢"]


@pytest.mark.money
@pytest.mark.parametrize("value", BAD_INTEGERS)
@pytest.mark.parametrize("param", ["limit", "offset"])
@pytest.mark.parametrize(("path", "who"), PAGINATED)
def test_a_bad_limit_or_offset_is_a_400_naming_the_parameter(market, path, who, param, value):
    response = market[who].get(path, {param: value})
    _assert_refused(response, 400, "invalid_parameter")
    assert response.json()["parameter"] == param


@pytest.mark.parametrize(("path", "who"), PAGINATED)
def test_limit_zero_and_above_the_maximum_are_refused_and_the_edges_pass(market, path, who):
    assert market[who].get(path, {"limit": 0}).json()["code"] == "invalid_parameter"
    assert market[who].get(path, {"limit": 1001}).json()["code"] == "invalid_parameter"
    assert market[who].get(path, {"limit": 1000, "offset": 2**31 - 1}).status_code == 200
    assert market[who].get(path, {"limit": 1, "offset": 0}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/rounds/{2**63}",
        "/api/v1/rounds/abc",
        "/api/v1/rounds/99999999999999999999",
        "/api/v1/rounds/%ED%A0%80",
        f"/api/v1/bets/{2**63}",
        f"/api/v1/withdrawals/{2**64}",
        f"/api/v1/bets?round={2**63}",
        "/api/v1/bets?round=%ED%A0%80",
        "/api/v1/rounds?status=%00",
    ],
)
def test_hostile_path_and_filter_values_are_4xx_with_a_code(market, path):
    response = market["bettor"].get(path)
    assert 400 <= response.status_code < 500, response.content[:200]
    assert response.json()["code"]


# --- 5c. Admin actions with a selection that is not an id ------------------------------------


def _changelists_with_actions(request) -> list[tuple[type, admin.ModelAdmin, str]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        actions = model_admin.get_actions(request)
        if actions:
            found.append((model, model_admin, next(iter(actions))))
    return found


@pytest.mark.money
@pytest.mark.parametrize("selected", ["abc", str(2**63), "-1' OR 1=1", "", "00000000-0000-0000-0000-00000000000g"])
@pytest.mark.parametrize("confirmed", [False, True], ids=["plain", "confirmation-form"])
def test_admin_action_with_a_selection_that_is_not_an_id_is_a_message(market, rf, selected, confirmed):
    superuser = user_create(email="root@example.com", password="root-pass-123", is_staff=True)
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    client = APIClient()
    client.force_login(superuser)
    request = rf.get("/admin/")
    request.user = superuser
    changelists = _changelists_with_actions(request)
    assert len(changelists) >= 5, [model.__name__ for model, _, _ in changelists]
    for model, model_admin, action in changelists:
        assert isinstance(model_admin, SelectionCheckedAdmin), model.__name__
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [selected, "1"]}
        if not confirmed:
            data["index"] = "0"
        else:
            data.update({"confirm": "1", "reason": "hostile"})
        before = _written()
        response = client.post(url, data)
        assert response.status_code == 302, (model.__name__, response.status_code, response.content[:300])
        errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
        assert errors and "No items have been changed" in errors[0], (model.__name__, errors)
        assert _written() == before, model.__name__


# --- 7. Commands: a CommandError sentence, never a traceback ---------------------------------

COMMAND_CASES = [
    ("audit_log", ["--limit", "-5"]),
    ("audit_log", ["--limit", str(2**63)]),
    ("audit_log", ["--limit", "abc"]),
    ("process_withdrawals", ["--limit", str(2**63)]),
    ("process_withdrawals", ["--limit", "-5"]),
    ("audit_log", ["--since", "99999999999999d"]),
    ("pnl", ["--csv", "/nonexistent-dir/x.csv"]),
    ("pnl", ["--to", "0001-01-01"]),
    ("pnl", ["--from", "9999-12-31", "--to", "9999-12-31"]),
    ("deposit", ["--user", "nobody@example.com", "--amount", "9" * 5000]),
    ("withdraw", ["--user", "nobody@example.com", "--amount", "١٢"]),
    ("backup", ["--dir", "/proc/x"]),
    ("backup", ["--dir", "/dev/null/x"]),
    ("seed", ["--users", str(2**63)]),
    ("seed", ["--users", "-1"]),
    ("seed", ["--fund", str(2**63)]),
]


@pytest.mark.money
@pytest.mark.parametrize(("name", "args"), COMMAND_CASES)
def test_hostile_command_options_are_a_command_error(db, name, args):
    before = _written()
    with pytest.raises(CommandError) as refused:
        call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO())
    message = str(refused.value)
    assert message and "Traceback" not in message
    assert _written() == before


def _manage(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "VAR_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["backup", "--dir", "/proc/x"], 1),  # CommandError: "CommandError: Cannot write backups to ..."
        (["audit_log", "--limit", "-5"], 2),  # argparse's usage error
        (["process_withdrawals", "--limit", str(2**63)], 2),
    ],
)
def test_from_the_shell_a_bad_option_is_a_sentence_not_a_traceback(tmp_path, args, exit_code):
    done = _manage(*args, tmp_path=tmp_path)
    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr
    assert "error" in done.stderr.lower()


@pytest.mark.slow
def test_pnl_to_a_missing_directory_from_the_shell_exits_1_without_a_traceback(tmp_path):
    assert _manage("migrate", "--noinput", tmp_path=tmp_path).returncode == 0
    done = _manage("pnl", "--csv", "/nonexistent-dir/x.csv", tmp_path=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "CommandError: Cannot write the CSV to /nonexistent-dir/x.csv" in done.stderr


@pytest.mark.postgres
@pytest.mark.money
@pytest.mark.django_db(transaction=True)
def test_two_seeds_at_once_both_succeed_and_fund_once():
    # PostgreSQL, two real threads: both used to race to the same emails (IntegrityError).
    def seed(index: int) -> str:
        out = io.StringIO()
        call_command("seed", "--users", "3", "--fund", "1000000", "--demo", stdout=out)
        return out.getvalue()

    results = run_threads(2, seed)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert all("Created 3 bettor(s)." in r for r in results)
    assert User.objects.filter(email__startswith="bettor").count() == 6
    assert User.objects.filter(email="admin@example.com", is_superuser=True).count() == 1
    for index in (1, 2, 3):
        demo = User.objects.get(email=f"demo{index}@example.com")
        assert Account.objects.get(code=f"user:{demo.pk}:cash").balance_u == 100_000_000  # credited once
    for bettor in User.objects.filter(email__startswith="bettor"):
        assert Account.objects.get(code=f"user:{bettor.pk}:cash").balance_u == 1_000_000


# --- 8. TRUNCATE by the tables' owner ----------------------------------------------------------

MONEY_TABLES = [
    "ledger_entries",
    "ledger_batches",
    "ledger_accounts",
    "bets",
    "rounds",
    "round_settlements",
    "withdrawals",
    "deposits",
]


@pytest.mark.postgres
@pytest.mark.money
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", MONEY_TABLES)
def test_truncate_of_a_money_table_by_its_owner_is_refused(table):
    import psycopg

    user = UserFactory()
    fund(user, 5_000_000)
    entries = LedgerEntry.objects.count()
    settings = connection.settings_dict
    # The owner (the suite connects as the superuser that ran the migrations), on its own connection.
    with (
        psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            dbname=settings["NAME"],
            autocommit=True,
        ) as owner,
        pytest.raises(psycopg.errors.RestrictViolation, match="TRUNCATE .* refused"),
    ):
        owner.execute(f"TRUNCATE {table} CASCADE")
    assert LedgerEntry.objects.count() == entries
    assert Account.objects.get(code=f"user:{user.pk}:cash").balance_u == 5_000_000


# --- 5d. What gunicorn refuses before Django runs ------------------------------------------------

GUNICORN_PORT = 18517


@pytest.fixture
def gunicorn(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "memory://",
        "GUNICORN_BIND": f"127.0.0.1:{GUNICORN_PORT}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_PIDFILE": str(tmp_path / "gunicorn.pid"),
    }
    # Migrated, as a deployed server is: unmigrated, every API path is 503 "unavailable" (no maintenance flag).
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, check=True, capture_output=True
    )
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _raw(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text()[-2000:])
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _raw(request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", GUNICORN_PORT), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"Connection: close" not in b"".join(chunks) and b"\r\n\r\n" in b"".join(chunks):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = [int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")]
                if length and len(body) >= length[0]:
                    break
        return b"".join(chunks)


GUNICORN_REFUSALS = [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "uri_too_long"),
    (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/9.9\r\nHost: localhost\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n", 400, "bad_request"),
]


@pytest.mark.slow
def test_gunicorn_own_refusals_are_json_with_a_code(gunicorn):
    for request, status, code in GUNICORN_REFUSALS:
        head, _, body = _raw(request).partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head[:100]
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["code"] == code, body
    # and a hostile body that gunicorn passes on reaches Django's strict parser, not a RecursionError
    deep = b"[" * 50_000 + b"]" * 50_000
    answer = _raw(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(deep)}\r\nConnection: close\r\n\r\n".encode()
        + deep
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head[:100]
    assert json.loads(body)["code"] == "json_too_deep"


# The number of hostile requests, command runs and statements this module sends (reported to the lead).
HOSTILE_CASES = (
    2 * len(JSON_POSTS)  # 50 000-deep array and object
    + len(JSON_POSTS)  # not UTF-8
    + len(SURROGATE_BODIES)
    + len(JSON_POSTS)  # over the upload limit
    + 1  # too many form fields
    + len(PAGINATED) * 2 * len(BAD_INTEGERS)  # limit and offset
    + len(PAGINATED) * 2  # limit 0 and 1001
    + 9  # paths and filters
    + 5 * 2 * 12  # admin: 5 selections x 2 forms x 12 changelists with actions
    + len(COMMAND_CASES)
    + 4  # from the shell
    + 2  # two seeds at once
    + len(MONEY_TABLES)
    + len(GUNICORN_REFUSALS)
    + 1  # one deep body through gunicorn
)
