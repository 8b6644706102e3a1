"""Receipts a bettor can check alone: the public settlement, their receipt, the stand-alone verifier."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from betting.models import Bet
from betting.selectors import bet_receipt_rows_text
from rounds.merkle import MerkleRoot, Pseudonyms, merkle_path, payout_lines_into_tree
from rounds.models import Round
from rounds.selectors import round_verify
from rounds.services import round_lock, round_open, round_settle
from rounds.verify_receipt import leaf_bytes, leaf_hash, receipt_problems, root_from_path
from tests.conftest import api_client_for
from tests.rounds.conftest import place_bet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settled(users):
    """Round 20250908 settled UP: 5 bets (one bettor twice), an odd number of leaves."""
    a, b, c, d = users(4)
    round_ = round_open(code="20250908")[0]
    bets = [
        place_bet(round_, a, "UP", 1_000_000),
        place_bet(round_, b, "DOWN", 2_000_000),
        place_bet(round_, c, "UP", 3_000_000),
        place_bet(round_, a, "DOWN", 500_000),
        place_bet(round_, d, "DOWN", 1_500_003),
    ]
    round_lock(code=round_.code)
    round_settle(code=round_.code, result="UP", reason="test")
    return round_, (a, b, c, d), bets


def _verify(tmp_path: Path, receipt: dict, published: dict) -> subprocess.CompletedProcess:
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "settlement.json").write_text(json.dumps(published))
    # The bettor's copy of the one file, run with -S -E (no site-packages, no environment): the standard
    # library only, none of the project, Django or its settings.
    (tmp_path / "rounds").mkdir(exist_ok=True)
    (tmp_path / "rounds" / "verify_receipt.py").write_bytes((REPO / "rounds" / "verify_receipt.py").read_bytes())
    return subprocess.run(
        [sys.executable, "-S", "-E", "-m", "rounds.verify_receipt", "receipt.json", "settlement.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.money
def test_a_receipt_verifies_alone_and_a_changed_payout_does_not(settled, tmp_path):
    round_, (a, b, c, d), bets = settled
    published = APIClient().get(f"/api/v1/rounds/{round_.code}/settlement").json()  # no login
    # DOWN pool 4 000 003, fee 1 % = 40 000, distributable 3 960 003 over the UP pool 4 000 000
    assert (published["up_pool_u"], published["down_pool_u"], published["fee_u"]) == (4_000_000, 4_000_003, 40_000)
    assert published["evidence"]["kind"] == "manual" and published["evidence"]["reason"] == "test"
    assert (
        len(published["merkle_root"]) == 64
        and published["settlement_digest"] == round_verify(code=round_.code).stored_digest
    )
    receipt = api_client_for(c).get(f"/api/v1/bets/{bets[2].pk}/receipt").json()
    assert receipt["bet"]["payout_u"] == 3_000_000 + 3_000_000 * 3_960_003 // 4_000_000 == 5_970_002
    assert receipt["settlement"]["merkle_root"] == published["merkle_root"]

    ok = _verify(tmp_path, receipt, published)
    assert (ok.returncode, ok.stdout.split(":")[0]) == (0, "VERIFIED"), ok.stdout + ok.stderr

    receipt["bet"]["payout_u"] += 1
    bad = _verify(tmp_path, receipt, published)
    assert bad.returncode == 1
    assert "the Merkle path does not lead to the published root" in bad.stdout
    assert "the payout should be 5970002 u" in bad.stdout


def test_every_receipt_of_the_round_verifies_and_names_nobody(settled):
    round_, bettors, bets = settled
    published = APIClient().get(f"/api/v1/rounds/{round_.code}/settlement").json()
    text = json.dumps(published)
    for bet in bets:
        receipt = api_client_for(bet.user).get(f"/api/v1/bets/{bet.pk}/receipt").json()
        assert receipt_problems(receipt, published) == []
        assert str(bet.user.pk) not in json.dumps(receipt) and bet.user.email not in json.dumps(receipt)
    assert not any(str(user.pk) in text or user.email in text for user in bettors)
    a = bettors[0]
    mine = [api_client_for(a).get(f"/api/v1/bets/{bet.pk}/receipt").json() for bet in (bets[0], bets[3])]
    assert mine[0]["bet"]["pseudonym"] == mine[1]["bet"]["pseudonym"]  # one bettor, one pseudonym per round
    assert Pseudonyms("20250909")(a.pk) != mine[0]["bet"]["pseudonym"]  # and another in another round


def test_a_receipt_is_the_owners_only(settled):
    round_, (a, b, c, d), bets = settled
    assert api_client_for(b).get(f"/api/v1/bets/{bets[0].pk}/receipt").status_code == 404
    assert APIClient().get(f"/api/v1/bets/{bets[0].pk}/receipt").status_code == 401


def test_an_unsettled_round_has_no_settlement_yet(users):
    round_open(code="20250908")
    response = APIClient().get("/api/v1/rounds/20250908/settlement")
    assert (response.status_code, response.json()["code"]) == (409, "round_not_settled")
    assert APIClient().get("/api/v1/rounds/2025-09-08/settlement").status_code == 400


def test_verify_round_checks_the_root(settled):
    round_, _, bets = settled
    out = StringIO()
    call_command("verify_round", "--code", round_.code, stdout=out)
    assert "OK       receipts Merkle root" in out.getvalue()
    Bet.objects.filter(pk=bets[1].pk).update(stake_u=2_000_001)  # a leaf changed after the fact
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("verify_round", "--code", round_.code, stdout=StringIO())
    assert round_verify(code=round_.code).root_ok is False


def test_the_next_round_chains_the_settled_digest(db):
    first = round_open(code="20250908")[0]
    round_lock(code=first.code)
    round_settle(code=first.code, result="VOID", reason="t")
    second = round_open(code="20250909")[0]
    assert second.prev_settlement_digest == Round.objects.get(pk=first.pk).settlement_digest != ""
    assert round_verify(code="20250909").ok


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_the_streamed_root_is_the_root_every_path_leads_to(count):
    leaves = [leaf_hash(leaf_bytes(bet_id=i, pseudonym="p", side="UP", stake_u=i, payout_u=0)) for i in range(count)]
    tree = MerkleRoot()
    for leaf in leaves:
        tree.add(leaf)
    assert {root_from_path(leaf, merkle_path(leaves, i)).hex() for i, leaf in enumerate(leaves)} == {tree.root}


@pytest.mark.money
def test_the_settlements_text_rows_give_the_verifiers_leaves_and_the_digests_lines(settled, monkeypatch):
    """The settlement hashes the bets from text rows (one COPY on PostgreSQL): the same leaves as
    rounds.verify_receipt's, the same "bet_id,payout_u" digest lines, chunk by chunk; and round_verify
    (a pass over the ORM's rows) recomputes the stored root and digest."""
    round_, _, bets = settled
    rows = list(Bet.objects.filter(round=round_).order_by("id"))
    pseudonym = Pseudonyms(round_.code)
    expected = MerkleRoot()
    for bet in rows:
        expected.add(
            leaf_hash(
                leaf_bytes(
                    bet_id=bet.pk,
                    pseudonym=pseudonym(bet.user_id),
                    side=bet.side,
                    stake_u=bet.stake_u,
                    payout_u=bet.payout_u,
                )
            )
        )
    lines = b"".join(f"{bet.pk},{bet.payout_u}\n".encode() for bet in rows)
    monkeypatch.setattr("betting.selectors.RECEIPT_ROWS_CHUNK", 100)  # several chunks of whole lines
    chunks = list(bet_receipt_rows_text(round_id=round_.pk))
    assert len(chunks) > 1 and b"".join(chunks) == b"".join(
        f"{bet.pk}|{bet.user_id}|{bet.side}|{bet.stake_u}|{bet.payout_u}\n".encode() for bet in rows
    )
    tree = MerkleRoot()
    assert b"".join(payout_lines_into_tree(tree, round_code=round_.code, chunks=chunks)) == lines
    assert (tree.root, tree.count) == (expected.root, 5)
    assert b"".join(payout_lines_into_tree(None, round_code=round_.code, chunks=chunks)) == lines  # digest only
    with pytest.raises(ValueError, match="whole line"):
        list(payout_lines_into_tree(tree, round_code=round_.code, chunks=[chunks[0][:-1]]))
    report = round_verify(code=round_.code)
    assert report.ok and report.root_ok and report.digest_ok and report.computed_root == expected.root
    assert [bet.payout_u for bet in rows] == [1_990_000, 0, 5_970_002, 0, 0]


@pytest.mark.money
def test_a_round_past_the_in_memory_limit_streams_its_rows_after_the_batch(users, monkeypatch):
    monkeypatch.setattr("rounds.services.SETTLEMENT_ROWS_IN_MEMORY_MAX", 2)
    monkeypatch.setattr("rounds.services.ThreadPoolExecutor", None)  # the in-memory path would need it
    a, b, c = users(3)
    round_ = round_open(code="20250908")[0]
    for user, side, stake_u in ((a, "UP", 1_000_000), (b, "DOWN", 2_000_000), (c, "UP", 3_000_000)):
        place_bet(round_, user, side, stake_u)
    round_lock(code=round_.code)
    settlement = round_settle(code=round_.code, result="UP", reason="test")
    # DOWN pool 2 000 000, fee 1 % = 20 000: 1 980 000 over the UP pool 4 000 000
    assert (settlement.bets_count, settlement.paid_out_u, settlement.dust_u) == (3, 1_495_000 + 4_485_000, 0)
    report = round_verify(code=round_.code)
    assert report.ok and report.root_ok and report.digest_ok and report.computed_root == settlement.merkle_root
