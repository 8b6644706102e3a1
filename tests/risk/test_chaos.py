"""`simulate --faults`: the chaos days play, the checker proves each day, one seed is one fingerprint, and the
checker has teeth (a payout refunded while the custodian still pays it is named)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

import withdrawals.services.payouts as payouts
from betting.models import Bet
from risk.chaos import FAULT_KINDS, ChaosSimulator, InvariantBroken, fault_kinds_parse, fault_schedule, fingerprint
from risk.simulation import trading_days
from withdrawals.models import Withdrawal

START = "20250106"
RESTORE_SEED, RESTORE_ERASED = 2, 2  # seed 2: the night's restore erases the day's 2 paid withdrawals


def _chaos(*args: str) -> str:
    out = StringIO()
    call_command("simulate", "--start", START, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _simulator(*, seed: int, days: int, bettors: int, faults: str) -> ChaosSimulator:
    from datetime import date

    return ChaosSimulator(
        days=trading_days(count=days, start=date(2025, 1, 6), today=date(2026, 1, 1)),
        bettors=bettors,
        seed=seed,
        kinds=fault_kinds_parse(faults),
        rate=0.3,
    )


def test_one_seed_gives_one_schedule_and_every_kind_at_least_once():
    kinds = list(FAULT_KINDS)
    first = fault_schedule(seed=11, days=5, kinds=kinds, rate=0.3)
    assert first == fault_schedule(seed=11, days=5, kinds=kinds, rate=0.3)
    assert first != fault_schedule(seed=12, days=5, kinds=kinds, rate=0.3)
    assert {f.kind for f in first} == set(kinds)
    assert all(1 <= f.day <= 5 and 2 <= f.n <= 5 for f in first)


def test_bad_fault_kinds_and_rates_are_refused_with_their_code(db):
    with pytest.raises(CommandError, match=r"Unknown fault kind nope.*\[unknown_fault\]"):
        _chaos("--faults", "webhook_repeat,nope")
    with pytest.raises(CommandError, match=r"\[bad_fault_rate\]"):
        _chaos("--faults", "all", "--fault-rate", "1.5")
    with pytest.raises(CommandError, match=r"\[bad_day\]"):
        _chaos("--replay", "3", "--day", "9", "--days", "2")
    assert not Bet.objects.exists()


def _fingerprint_of(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("fingerprint "))


@pytest.mark.django_db
def test_the_same_seed_twice_gives_the_same_fingerprint():
    # given: two full runs of seed 5 (every kind SQLite can play), each rolled back afterwards
    prints, tables = [], []
    for _ in range(2):
        with transaction.atomic():
            output = _chaos("--faults", "all", "--seed", "5", "--days", "2", "--bettors", "12")
            prints.append(_fingerprint_of(output))
            tables.append(output)
            assert fingerprint() != prints[-1]  # the custodian's own payouts are part of it
            transaction.set_rollback(True)
    # then
    assert prints[0] == prints[1]
    assert tables[0] == tables[1]
    assert "0 failure(s)" in tables[0]
    # and another seed is another world
    with transaction.atomic():
        assert _fingerprint_of(_chaos("--faults", "all", "--seed", "6", "--days", "2", "--bettors", "12")) != prints[0]
        transaction.set_rollback(True)


@pytest.mark.money
def test_without_the_in_flight_recheck_a_late_success_is_paid_and_refunded_and_the_checker_names_it(db, monkeypatch):
    # given: staff's "mark failed" no longer re-checks that a PROCESSING payout may be at the custodian
    # (as if the processing code had asked it): it refunds at once
    real_fail = payouts.withdrawal_fail

    def fail_without_recheck(**kwargs):
        return real_fail(**{**kwargs, "payout_checked": True})

    monkeypatch.setattr(payouts, "withdrawal_fail", fail_without_recheck)
    simulator = _simulator(seed=3, days=1, bettors=20, faults="custodian_late_success")
    # when: the custodian times out on a payout it then makes late, after the claim's lease ran out
    with pytest.raises(InvariantBroken) as broken:
        simulator.run()
    # then: the checker names the double payment, with the seed, the day and the fault
    assert "never_paid_and_refunded" in broken.value.broken
    assert "bettor_cash_equals_model" in broken.value.broken
    message = str(broken.value)
    assert message.startswith("seed 3 day 1 (20250106): after custodian_late_success")
    assert "paid at the custodian and refunded" in message
    assert message.endswith(
        "Replay: simulate --replay 3 --day 1 --start 20250106 --days 1 --bettors 20 "
        "--faults custodian_late_success --fault-rate 0.3"
    )
    refunded = Withdrawal.objects.get(status=Withdrawal.Status.FAILED)
    assert simulator.custodian.state(refunded.reference) == "completed"  # the custodian's own word


@pytest.mark.money
def test_with_the_recheck_the_same_seed_completes_the_late_payout_once(db):
    simulator = _simulator(seed=3, days=1, bettors=20, faults="custodian_late_success")
    simulator.run()
    assert simulator.injected == {"custodian_late_success": 1}
    flagged = Withdrawal.objects.get(pk=next(iter(simulator.expected_flags)))
    assert flagged.status == Withdrawal.Status.COMPLETED
    assert simulator.custodian.state(flagged.reference) == "completed"
    assert simulator.custodian.sends[flagged.reference] == 1  # sent once: the rest was asking its status
    assert not Withdrawal.objects.filter(status=Withdrawal.Status.FAILED).exists()
    assert [c.name for c in simulator.chaos_days[0].checks if not c.ok] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_db_blip_terminates_our_backend_mid_bet_and_the_retry_places_it_once():
    simulator = _simulator(seed=4, days=1, bettors=15, faults="db_blip")
    simulator.run()
    assert simulator.injected == {"db_blip": 1}
    day = simulator.chaos_days[0]
    assert len(day.checks) == 11 and not day.failures
    # every bet the model holds is one row: the terminated transaction left nothing behind
    assert Bet.objects.count() == simulator.model_bets_total


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("seed", "where"), [(5, "settlement"), (2, "payout")])
def test_worker_kill_mid_money_work_then_restarted_loses_nothing(seed, where):
    # given: seed 5 kills the real worker half-way through the settlement (n even), seed 2 between a payout
    # sent and recorded (n odd); both on day 1
    simulator = _simulator(seed=seed, days=1, bettors=15, faults="worker_kill")
    assert [(f.day, f.n % 2) for f in simulator.schedule][:1] == [(1, 0 if where == "settlement" else 1)]
    # when
    simulator.run()
    # then: the restarted worker finished the work exactly once and every invariant holds
    assert simulator.injected == {"worker_kill": 1}
    assert simulator.kills == [where]
    assert not simulator.chaos_days[0].failures
    paid = simulator.custodian.paid()
    assert sorted(paid) == sorted(w.reference for w in Withdrawal.objects.filter(status="COMPLETED"))


@pytest.mark.money
@pytest.mark.parametrize("kind", ["source_down", "source_slow", "source_lies", "source_garbage"])
def test_a_misbehaving_price_source_is_outvoted_and_the_round_settles_on_the_true_close(db, kind):
    from marketdata.models import CloseQuote, OfficialClose

    simulator = _simulator(seed=8, days=1, bettors=12, faults=kind)
    simulator.run()
    assert simulator.injected == {kind: 1}
    struck, kinds = simulator.source_faults["20250106"]
    assert kinds == kind
    close = OfficialClose.objects.get(date="2025-01-06")
    assert (close.price, close.source) == (simulator.price, "quorum")
    quotes = {q.source: q for q in CloseQuote.objects.filter(close_check__date="2025-01-06")}
    assert sorted(quotes) == ["alphavantage", "stooq", "twelvedata"]
    assert [name for name, q in sorted(quotes.items()) if not q.accepted] == [struck]
    assert quotes[struck].reason  # why it was refused, recorded as evidence
    assert not simulator.chaos_days[0].failures


@pytest.mark.money
def test_replay_plays_the_seed_up_to_that_day(db):
    output = _chaos(
        "--replay", "3", "--day", "1", "--days", "2", "--bettors", "20", "--faults", "custodian_late_success"
    )
    assert "chaos: 1 seed(s), 1 day(s) simulated, 11 invariant checks, 0 failure(s)" in output
    assert set(Bet.objects.values_list("round__code", flat=True)) == {"20250106"}


@pytest.mark.money
def test_a_broken_invariant_is_a_command_error_naming_seed_day_fault_and_invariant(db, monkeypatch):
    real_fail = payouts.withdrawal_fail
    monkeypatch.setattr(payouts, "withdrawal_fail", lambda **kw: real_fail(**{**kw, "payout_checked": True}))
    with pytest.raises(CommandError) as refused:
        _chaos("--replay", "3", "--day", "1", "--days", "1", "--bettors", "20", "--faults", "custodian_late_success")
    message = str(refused.value)
    assert message.startswith("seed 3 day 1 (20250106): after custodian_late_success(n=")
    assert "never_paid_and_refunded: withdrawal " in message
    assert "Replay: simulate --replay 3 --day 1 --start 20250106 --days 1 --bettors 20" in message
    assert message.endswith(" [invariant_broken]")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_seed_10_two_worker_kills_on_one_broker_and_a_late_success_the_same_day():
    """Seed 10 (all kinds, 5 days) found that a killed worker's batch (acks late) comes back once its
    visibility timeout passes on the simulated clock, a day later, and ran before the next kill's lock was
    held. Harmless to the money (a batch is idempotent), but the chaos lost its aim: each kill now has its own
    broker, and the payout kill comes after the day's own runs. The seed plays clean."""
    simulator = _simulator(seed=10, days=5, bettors=30, faults="all")
    assert [f.day for f in simulator.schedule if f.kind == "worker_kill"] == [2, 3]
    simulator.run()
    assert simulator.kills == ["payout", "payout"]
    assert len(simulator.chaos_days) == 5 and not any(d.failures for d in simulator.chaos_days)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_web_kill_a_gunicorn_worker_dies_mid_bet_and_the_retry_with_the_same_key_places_it_once():
    # given: live mode, the bets over HTTP to a real gunicorn (2 workers) on this database
    from datetime import date

    from betting.models import Bet as BetRow

    simulator = ChaosSimulator(
        days=trading_days(count=1, start=date(2025, 1, 6), today=date(2026, 1, 1)),
        bettors=15,
        seed=7,
        kinds=fault_kinds_parse("web_kill"),
        rate=0.3,
        live=True,
    )
    assert [(f.day, f.kind) for f in simulator.schedule] == [(1, "web_kill")]
    # when: one worker is killed -9 while its bet waits, mid-transaction, on the bettor's cash row
    simulator.run()
    # then: the request died with it (a dropped connection, the fault's own), the client retried with the same
    # key, and the bet is there once; every invariant holds and no other request failed
    assert simulator.injected == {"web_kill": 1}
    assert simulator.fault_errors == {"web_kill": 1}
    assert simulator.kills_web == ["ConnectionError"]
    assert simulator.responses_5xx == 0
    [key] = simulator.web_kill_keys
    assert BetRow.objects.filter(idempotency_key=key).count() == 1
    assert BetRow.objects.count() == simulator.model_bets_total
    day = simulator.chaos_days[0]
    assert len(day.checks) == 11 and not day.failures
    assert "web_kill" not in simulator.skipped


def test_web_kill_is_played_in_live_mode_only(db):
    output = _chaos("--faults", "web_kill", "--seed", "5", "--days", "1", "--bettors", "5")
    assert "web_kill                        -  skipped: live mode only (simulate --faults ... --live local)" in output
    with pytest.raises(CommandError, match=r"--live takes 'local'.*\[live_needs_local\]"):
        _chaos("--faults", "all", "--live", "http://127.0.0.1:8000")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_restore_erases_what_the_custodian_paid_today_and_the_checker_still_sees_it():
    """The custodian keeps its own state: the night's restore of the morning backup erases the day's paid
    withdrawals from our database (listed in the loss as already paid out, and confirmed), but not from the
    custodian's books; the checker reads those, so an erased payout the loss did not name would be named."""
    from risk.chaos import custodian_payouts_unknown

    simulator = _simulator(seed=RESTORE_SEED, days=1, bettors=30, faults="restore")
    simulator.run()
    assert simulator.injected == {"restore": 1}
    ours = {w.reference for w in Withdrawal.objects.all()}
    erased = sorted(set(simulator.custodian.paid()) - ours)
    assert len(erased) == RESTORE_ERASED
    assert sorted(simulator.written_off) == erased
    assert not simulator.chaos_days[0].failures
    restore_check = simulator.chaos_days[0].checks[0]
    assert restore_check.name == "restore_lost_what_the_model_expects"
    assert f"({RESTORE_ERASED} already paid out)" in restore_check.detail
    # had the confirmed loss not named them, the checker would
    simulator.written_off.clear()
    assert [line.split(" (")[0] for line in custodian_payouts_unknown(simulator)] == [f"payout {r}" for r in erased]
