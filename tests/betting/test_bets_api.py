"""POST/GET /api/v1/bets and bet_place: money moves exactly, every refusal has its code and writes nothing."""

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import AuditEvent
from betting.models import Bet
from betting.services import bet_place
from ledger.models import Account, LedgerBatch, LedgerEntry
from ledger.selectors import account_balance_u, user_balance_u
from ops.selectors import Halt
from risk.services import risk_limits_set
from rounds.models import Round
from rounds.services import round_lock
from tests.betting.conftest import round_create
from tests.conftest import assert_ledger_invariants
from tests.factories import UserFactory, fund, role_user

pytestmark = [pytest.mark.money, pytest.mark.django_db]

POOL = Account.round_pool_code("20250908")


def _post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/api/v1/bets", body, format="json", **headers)


def _written() -> tuple[int, int, int]:
    return Bet.objects.count(), LedgerBatch.objects.count(), LedgerEntry.objects.count()


def _pools(code: str = "20250908") -> tuple[int, int, int]:
    round_ = Round.objects.get(code=code)
    return round_.up_pool_u, round_.down_pool_u, account_balance_u(code=Account.round_pool_code(code))


# --- placing --------------------------------------------------------------------------------


def test_bet_moves_exactly_the_stake_from_cash_to_the_pool(funded_bettor, open_round, api, new_key):
    client = api(funded_bettor)
    # when
    up = _post(client, {"side": "UP", "stake_u": 2_500_001, "round": "20250908"}, new_key())
    down = _post(client, {"side": "DOWN", "stake_u": 1_000_000}, new_key())  # default: the current round
    # then
    assert up.status_code == 201, up.json()
    assert down.status_code == 201, down.json()
    body = up.json()
    assert set(body) == {"id", "round", "side", "stake_u", "status", "payout_u", "created_at"}
    assert (body["round"], body["side"], body["stake_u"], body["status"], body["payout_u"]) == (
        "20250908",
        "UP",
        2_500_001,
        "PLACED",
        0,
    )
    assert down.json()["round"] == "20250908"
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000 - 2_500_001 - 1_000_000
    assert _pools() == (2_500_001, 1_000_000, 3_500_001)
    bet = Bet.objects.get(pk=body["id"])
    assert sorted(
        LedgerEntry.objects.filter(ref_type="bet", ref_id=str(bet.pk)).values_list("account", "amount_u")
    ) == [
        (POOL, 2_500_001),
        (Account.user_cash_code(funded_bettor.pk), -2_500_001),
    ]
    assert_ledger_invariants()


def test_several_bets_per_user_per_round_within_the_limit(funded_bettor, open_round, settings):
    risk_limits_set(changes={"max_user_round_u": 5_000_000}, reason="test")
    for _ in range(5):
        bet_place(user=funded_bettor, side="UP", stake_u=1_000_000)
    assert _pools() == (5_000_000, 0, 5_000_000)
    assert user_balance_u(user_id=funded_bettor.pk) == 95_000_000
    assert_ledger_invariants()


# --- refusals: each with its code, nothing written -------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"side": "UP", "stake_u": 0}, 400, "invalid_amount"),
        ({"side": "UP", "stake_u": -1_000_000}, 400, "invalid_amount"),
        ({"side": "UP", "stake_u": 1.5}, 400, "invalid"),
        ({"side": "UP", "stake_u": 1_000_000.0}, 400, "invalid"),
        ({"side": "UP", "stake_u": "1000000"}, 400, "invalid"),
        ({"side": "UP", "stake_u": True}, 400, "invalid"),
        ({"side": "UP", "stake_u": None}, 400, "invalid"),
        ({"side": "UP"}, 400, "invalid"),
        ({"side": "UP", "stake_u": 99_999}, 400, "stake_too_small"),
        ({"side": "UP", "stake_u": 10_000_000_001}, 400, "stake_too_large"),
        ({"side": "UP", "stake_u": 10**30}, 400, "invalid_amount"),
        ({"side": "SIDEWAYS", "stake_u": 1_000_000}, 400, "invalid"),
        ({"side": "up", "stake_u": 1_000_000}, 400, "invalid"),
        ({"stake_u": 1_000_000}, 400, "invalid"),
        ({"side": "UP", "stake_u": 1_000_000, "round": "20991231"}, 404, "unknown_round"),
        ({"side": "UP", "stake_u": 1_000_000, "round": "2025-09-08"}, 400, "invalid_round_code"),
        ({"side": "UP", "stake_u": 1_000_000, "round": "20250230"}, 400, "invalid_round_code"),
        ({"side": "UP", "stake_u": 200_000_000}, 409, "insufficient_funds"),  # over the 100 USDC balance
    ],
)
def test_refusals_have_their_code_and_write_nothing(funded_bettor, open_round, api, new_key, body, status, code):
    before = _written()
    response = _post(api(funded_bettor), body, new_key())
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert _written() == before
    assert _pools() == (0, 0, 0)
    assert user_balance_u(user_id=funded_bettor.pk) == 100_000_000
    assert_ledger_invariants()


def test_form_encoded_body_is_refused(funded_bettor, open_round, api):
    # stake_u must be a JSON integer; a form field is a string
    response = api(funded_bettor).post("/api/v1/bets", {"side": "UP", "stake_u": "1000000"})
    assert response.status_code == 415
    assert Bet.objects.count() == 0


def test_over_the_per_user_round_limit_is_refused(funded_bettor, open_round, api, new_key, settings):
    risk_limits_set(changes={"max_user_round_u": 5_000_000}, reason="test")
    client = api(funded_bettor)
    assert _post(client, {"side": "UP", "stake_u": 3_000_000}, new_key()).status_code == 201
    before = _written()
    # when: 3 + 3 > 5 USDC, even on the other side
    response = _post(client, {"side": "DOWN", "stake_u": 3_000_000}, new_key())
    # then
    assert response.status_code == 409
    assert response.json()["code"] == "round_stake_limit_exceeded"
    assert _written() == before
    assert _pools() == (3_000_000, 0, 3_000_000)
    assert user_balance_u(user_id=funded_bettor.pk) == 97_000_000
    # a single stake above the limit is refused before any query
    assert _post(client, {"side": "UP", "stake_u": 6_000_000}, new_key()).json()["code"] == "round_stake_limit_exceeded"
    assert_ledger_invariants()


def test_a_locked_round_refuses_bets(funded_bettor, open_round, api, new_key):
    round_lock(code="20250908")
    before = _written()
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000, "round": "20250908"}, new_key())
    assert response.status_code == 409
    assert response.json()["code"] == "round_not_open"
    # without a round: the current round is the locked one
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, new_key())
    assert response.json()["code"] == "round_not_open"
    assert _written() == before
    assert _pools() == (0, 0, 0)


def test_no_round_at_all(funded_bettor, api, new_key):
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, new_key())
    assert response.status_code == 404
    assert response.json()["code"] == "no_current_round"


def test_bets_close_on_the_clock_even_if_the_lock_task_is_late(funded_bettor, open_round, api, new_key):
    client = api(funded_bettor)
    before = _written()
    # given: lock_at has come but the round is still OPEN (nobody ran round_lock)
    with time_machine.travel(open_round.lock_at, tick=False):
        at_lock = _post(client, {"side": "UP", "stake_u": 1_000_000}, new_key())
    with time_machine.travel(open_round.lock_at.timestamp() + 3600, tick=False):
        after_lock = _post(client, {"side": "DOWN", "stake_u": 1_000_000, "round": "20250908"}, new_key())
    # then
    for response in (at_lock, after_lock):
        assert response.status_code == 409
        assert response.json()["code"] == "betting_closed"
    assert Round.objects.get(code="20250908").status == Round.Status.OPEN
    assert _written() == before
    assert _pools() == (0, 0, 0)
    # a microsecond before lock_at is still in time
    with time_machine.travel(open_round.lock_at.timestamp() - 0.001, tick=False):
        assert _post(client, {"side": "UP", "stake_u": 1_000_000}, new_key()).status_code == 201


def test_betting_halt_refuses_with_its_code(funded_bettor, open_round, api, new_key, monkeypatch):
    monkeypatch.setattr("betting.services.betting_halt", lambda: Halt(code="emergency_stop", reason="drill"))
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, new_key())
    assert response.status_code == 423
    assert response.json()["code"] == "emergency_stop"
    assert "drill" in response.json()["detail"]
    assert Bet.objects.count() == 0
    monkeypatch.setattr("betting.services.betting_halt", lambda: Halt(code="circuit_breaker", reason="loss"))
    assert _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, new_key()).json()["code"] == (
        "circuit_breaker"
    )


def test_missing_or_forged_token_is_401(funded_bettor, open_round):
    anonymous = APIClient()
    assert anonymous.post("/api/v1/bets", {"side": "UP", "stake_u": 1_000_000}, format="json").status_code == 401
    assert anonymous.get("/api/v1/bets").status_code == 401
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    response = forged.post("/api/v1/bets", {"side": "UP", "stake_u": 1_000_000}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert Bet.objects.count() == 0


# --- idempotency ---------------------------------------------------------------------------


def test_idempotent_replay_returns_the_same_bet_and_body(funded_bettor, open_round, api):
    client = api(funded_bettor)
    body = {"side": "DOWN", "stake_u": 4_000_000}
    # when
    responses = [_post(client, body, "key-1") for _ in range(5)]
    # then
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200]
    assert all(r.json() == responses[0].json() for r in responses)
    assert responses[1]["Idempotent-Replayed"] == "true"
    assert Bet.objects.count() == 1
    assert user_balance_u(user_id=funded_bettor.pk) == 96_000_000
    assert _pools() == (0, 4_000_000, 4_000_000)
    assert_ledger_invariants()


def test_replay_after_the_round_locked_still_returns_the_bet(funded_bettor, open_round, api):
    client = api(funded_bettor)
    first = _post(client, {"side": "UP", "stake_u": 1_000_000}, "k")
    round_lock(code="20250908")
    again = _post(client, {"side": "UP", "stake_u": 1_000_000}, "k")
    assert (again.status_code, again.json()) == (200, first.json())


def test_same_key_different_body_is_422_and_writes_nothing(funded_bettor, open_round, api):
    client = api(funded_bettor)
    assert _post(client, {"side": "UP", "stake_u": 1_000_000}, "key-2").status_code == 201
    before = _written()
    for other in ({"side": "DOWN", "stake_u": 1_000_000}, {"side": "UP", "stake_u": 1_000_001}):
        response = _post(client, other, "key-2")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_conflict"
    assert _written() == before
    assert _pools() == (1_000_000, 0, 1_000_000)
    assert_ledger_invariants()


def test_keys_are_per_user(funded_bettor, open_round, api):
    other = UserFactory()
    fund(other, 10_000_000)
    assert _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, "shared").status_code == 201
    assert _post(api(other), {"side": "UP", "stake_u": 1_000_000}, "shared").status_code == 201
    assert Bet.objects.count() == 2


def test_refused_for_funds_then_deposit_then_retry_with_the_same_key_succeeds(bettor, open_round, api):
    """The rule: a refused request writes nothing, so it does not use up its key. The retry after
    a deposit is a new attempt and places the bet (once)."""
    fund(bettor, 1_000_000)
    client = api(bettor)
    body = {"side": "UP", "stake_u": 2_000_000}
    # given: refused for funds
    refused = _post(client, body, "K")
    assert (refused.status_code, refused.json()["code"]) == (409, "insufficient_funds")
    assert Bet.objects.count() == 0
    # when: a deposit, then the same request with the same key
    fund(bettor, 5_000_000)
    retried = _post(client, body, "K")
    replayed = _post(client, body, "K")
    # then
    assert retried.status_code == 201
    assert (replayed.status_code, replayed.json()) == (200, retried.json())
    assert Bet.objects.count() == 1
    assert user_balance_u(user_id=bettor.pk) == 4_000_000
    assert _pools() == (2_000_000, 0, 2_000_000)
    assert_ledger_invariants()


def test_without_a_key_each_post_is_a_new_bet(funded_bettor, open_round, api):
    client = api(funded_bettor)
    assert _post(client, {"side": "UP", "stake_u": 1_000_000}).status_code == 201
    assert _post(client, {"side": "UP", "stake_u": 1_000_000}).status_code == 201
    assert Bet.objects.count() == 2
    assert _pools() == (2_000_000, 0, 2_000_000)


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "ünïcode"])
def test_malformed_idempotency_key_is_400(funded_bettor, open_round, api, key):
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert Bet.objects.count() == 0


# --- reading own bets ------------------------------------------------------------------------


def test_another_users_bet_is_404_and_lists_are_own_only(funded_bettor, open_round, api, new_key):
    other = UserFactory()
    fund(other, 10_000_000)
    mine = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000}, new_key()).json()
    theirs = _post(api(other), {"side": "DOWN", "stake_u": 2_000_000}, new_key()).json()
    client = api(funded_bettor)
    # own bet
    response = client.get(f"/api/v1/bets/{mine['id']}")
    assert (response.status_code, response.json()) == (200, mine)
    # another user's bet: as unknown as a missing one
    for bet_id in (theirs["id"], 999_999):
        response = client.get(f"/api/v1/bets/{bet_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "unknown_bet"
    listing = client.get("/api/v1/bets").json()
    assert listing["count"] == 1
    assert listing["results"] == [mine]


def test_list_filters_by_round_and_paginates(funded_bettor, open_round, api, new_key):
    round_create("20250909")
    client = api(funded_bettor)
    for code in ("20250908", "20250908", "20250909"):
        assert _post(client, {"side": "UP", "stake_u": 1_000_000, "round": code}, new_key()).status_code == 201
    assert client.get("/api/v1/bets").json()["count"] == 3
    by_round = client.get("/api/v1/bets?round=20250909").json()
    assert by_round["count"] == 1
    assert by_round["results"][0]["round"] == "20250909"
    page = client.get("/api/v1/bets?limit=2&offset=0").json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert page["results"][0]["id"] > page["results"][1]["id"]  # newest first
    assert client.get("/api/v1/bets?round=bad").json()["code"] == "invalid_round_code"


# --- staff on behalf of a user ----------------------------------------------------------------


def test_an_operator_may_bet_on_behalf_of_a_user_with_an_audit_row(funded_bettor, open_round, api, new_key):
    staff = role_user("operator")  # is_staff alone is not enough: tests/proof/test_staff_authority.py
    response = _post(api(staff), {"side": "UP", "stake_u": 1_000_000, "user_id": str(funded_bettor.pk)}, new_key())
    assert response.status_code == 201, response.json()
    bet = Bet.objects.get(pk=response.json()["id"])
    assert bet.user_id == funded_bettor.pk
    assert user_balance_u(user_id=funded_bettor.pk) == 99_000_000
    event = AuditEvent.objects.get(action="bet.place_on_behalf")
    assert (event.actor_id, event.object_id, event.source) == (staff.pk, str(bet.pk), "api")
    assert_ledger_invariants()


def test_a_bettor_may_not_bet_on_behalf_of_another(funded_bettor, open_round, api, new_key):
    victim = UserFactory()
    fund(victim, 10_000_000)
    response = _post(api(funded_bettor), {"side": "UP", "stake_u": 1_000_000, "user_id": str(victim.pk)}, new_key())
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Bet.objects.count() == 0


# --- the hot path's round trips -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # as in production: bet_place's atomic is the outermost one
def test_bet_place_query_count(funded_bettor, open_round):
    """Pinned so a regression on the hot path shows. PostgreSQL: halt check 1, the round's admission with
    the bet and the bettor's running totals 1, and ledger_post 1: batch, user cash, entries, then the two
    hot rows, the pool account and the round's pool UPDATE, in one statement. SQLite runs the admission,
    the totals and the bet as 3, the ledger's steps as 4 and the round's UPDATE as 1. BEGIN/COMMIT are
    not counted."""
    bet_place(user=funded_bettor, side="UP", stake_u=1_000_000, idempotency_key="warm")
    with CaptureQueriesContext(connection) as queries:
        bet, created = bet_place(user=funded_bettor, side="DOWN", stake_u=1_000_000, idempotency_key="q1")
    assert created is True
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")]
    if connection.vendor == "postgresql":
        assert len(statements) == 3, "\n".join(statements)
        assert "FOR KEY SHARE" in statements[1] and "INSERT INTO bets" in statements[1], statements[1]
        last = statements[-1]
        assert last.index("hot AS (UPDATE ledger_accounts") < last.index("then_ AS (UPDATE rounds"), last
    else:
        assert len(statements) == 9, "\n".join(statements)
        assert statements[-2].startswith("UPDATE ledger_accounts") and "pool" in statements[-2], statements[-2]
        assert statements[-1].startswith("UPDATE rounds"), statements[-1]


def test_a_bet_request_reads_the_switches_once_and_a_stop_still_refuses_the_next(
    funded_bettor, open_round, api, new_key
):
    """The maintenance middleware reads the switches that are on once; the bet's halt check answers from that
    read (one ops_switches query per request, not two). A stop made between two requests refuses the second."""
    from ops.services import ops_emergency_stop

    client = api(funded_bettor)
    _post(client, {"side": "UP", "stake_u": 1_000_000}, new_key())  # warm: the token, the limits snapshot
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, {"side": "UP", "stake_u": 1_000_000}, new_key())
    assert response.status_code == 201, response.json()
    assert len([q for q in queries.captured_queries if "ops_switches" in q["sql"]]) == 1
    ops_emergency_stop(active=True, reason="drill", source="cli")
    refused = _post(client, {"side": "UP", "stake_u": 1_000_000}, new_key())
    assert (refused.status_code, refused.json()["code"]) == (423, "emergency_stop")
    assert Bet.objects.count() == 2
