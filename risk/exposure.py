"""Exposure: what is staked on a round, what each side's win would pay, who holds the biggest shares.

The one definition every reader uses: the admin page, `exposure --round`, the staff JSON endpoint,
the Prometheus gauges (ops.dashboard) and the breaker and alert rules (ops.rules, through
`exposure_concerns`). It sits above betting and rounds (it reads their selectors); bet_place never
imports it (it imports only risk.checks).

Worst-case payout of a side = what leaves the pool to bettors if that side wins, with the
settlement's own rule: fee = floor(losing × fee_bps / 10 000), each winning bet gets
stake + floor(stake × (losing − fee) / winning). A side that wins against an empty side (or an empty
side "winning") is a VOID: every stake back, no fee. The house keeps pool − payout (fee + dust).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from betting.selectors import BettorSideStake, bet_exposure_by_bettor, bet_round_totals
from risk.selectors import house_limits_get
from rounds.models import Round
from rounds.selectors import round_get, rounds_open

SIDES = ("UP", "DOWN")
TOP_DEFAULT = 10


@dataclass(frozen=True)
class SideExposure:
    side: str
    staked_u: int
    bets: int
    void_if_wins: bool  # the other side is empty: a win of this side is a VOID (stakes back)
    fee_if_wins_u: int
    payout_if_wins_u: int  # to bettors, stakes included
    house_if_wins_u: int  # fee + dust


@dataclass(frozen=True)
class BettorShare:
    user_id: Any
    email: str
    side: str
    staked_u: int
    bets: int
    side_share_bps: int  # of the side's stakes, in basis points (floor)
    pool_share_bps: int
    payout_if_wins_u: int


@dataclass(frozen=True)
class RoundExposure:
    code: str
    status: str
    fee_bps: int
    up: SideExposure
    down: SideExposure
    top: list[BettorShare] = field(default_factory=list)
    # The largest single bettor of each side, over every bettor (not only the `top` listed).
    largest: dict[str, BettorShare] = field(default_factory=dict)

    @property
    def pool_u(self) -> int:
        return self.up.staked_u + self.down.staked_u

    @property
    def bets(self) -> int:
        return self.up.bets + self.down.bets

    @property
    def worst_case_payout_u(self) -> int:
        return max(self.up.payout_if_wins_u, self.down.payout_if_wins_u)

    def side(self, side: str) -> SideExposure:
        return self.up if side == "UP" else self.down

    def top_share_bps(self, side: str) -> int:
        largest = self.largest.get(side)
        return largest.side_share_bps if largest else 0


def _bps(part_u: int, whole_u: int) -> int:
    return part_u * 10_000 // whole_u if whole_u else 0


def payout_terms(*, side_u: int, other_u: int, fee_bps: int) -> tuple[int, int, int, bool]:
    """(fee_u, distributable_u, winning_pool_u, void) if the side holding `side_u` wins against `other_u`."""
    if side_u == 0 or other_u == 0:
        return 0, 0, 1, True  # a VOID: stake + floor(stake × 0 / 1) = the stake back
    fee_u = other_u * fee_bps // 10_000
    return fee_u, other_u - fee_u, side_u, False


def round_exposure(*, code: str, top: int = TOP_DEFAULT, round_: Round | None = None) -> RoundExposure:
    """The exposure of round `code` from its bets (every bet, whatever its status). Raises unknown_round."""
    round_ = round_ or round_get(code=code)
    up_u, down_u, up_n, down_n = bet_round_totals(round_id=round_.pk, placed_only=False)
    terms = {
        "UP": payout_terms(side_u=up_u, other_u=down_u, fee_bps=round_.fee_bps),
        "DOWN": payout_terms(side_u=down_u, other_u=up_u, fee_bps=round_.fee_bps),
    }
    rows = bet_exposure_by_bettor(round_id=round_.pk, payout_terms={s: (t[1], t[2]) for s, t in terms.items()})
    pool_u = up_u + down_u
    staked = {"UP": up_u, "DOWN": down_u}
    sides = {}
    for side, count in (("UP", up_n), ("DOWN", down_n)):
        fee_u, _, _, void = terms[side]
        if void:
            payout_u = pool_u  # every stake back, both sides
        else:
            payout_u = sum(row.payout_if_wins_u for row in rows if row.side == side)
        sides[side] = SideExposure(
            side=side,
            staked_u=staked[side],
            bets=count,
            void_if_wins=void,
            fee_if_wins_u=fee_u,
            payout_if_wins_u=payout_u,
            house_if_wins_u=pool_u - payout_u,
        )
    return RoundExposure(
        code=round_.code,
        status=round_.status,
        fee_bps=round_.fee_bps,
        up=sides["UP"],
        down=sides["DOWN"],
        top=[_share(row, staked, pool_u) for row in rows[:top]],
        largest={
            side: _share(row, staked, pool_u)
            for side in SIDES
            if (row := next((r for r in rows if r.side == side), None)) is not None  # rows: biggest first
        },
    )


def _share(row: BettorSideStake, staked: dict[str, int], pool_u: int) -> BettorShare:
    return BettorShare(
        user_id=row.user_id,
        email=row.email,
        side=row.side,
        staked_u=row.staked_u,
        bets=row.bets,
        side_share_bps=_bps(row.staked_u, staked[row.side]),
        pool_share_bps=_bps(row.staked_u, pool_u),
        payout_if_wins_u=row.payout_if_wins_u,
    )


def round_exposure_json(exposure: RoundExposure) -> dict[str, Any]:
    """The exposure as JSON (integers in u, shares in basis points): the command's --json and the staff API."""

    def side(s: SideExposure) -> dict[str, Any]:
        return {
            "staked_u": s.staked_u,
            "bets": s.bets,
            "void_if_wins": s.void_if_wins,
            "fee_if_wins_u": s.fee_if_wins_u,
            "payout_if_wins_u": s.payout_if_wins_u,
            "house_if_wins_u": s.house_if_wins_u,
        }

    return {
        "round": exposure.code,
        "status": exposure.status,
        "fee_bps": exposure.fee_bps,
        "pool_u": exposure.pool_u,
        "bets": exposure.bets,
        "worst_case_payout_u": exposure.worst_case_payout_u,
        "sides": {"UP": side(exposure.up), "DOWN": side(exposure.down)},
        "top_bettors": [
            {
                "user_id": str(b.user_id),
                "email": b.email,
                "side": b.side,
                "staked_u": b.staked_u,
                "bets": b.bets,
                "side_share_bps": b.side_share_bps,
                "pool_share_bps": b.pool_share_bps,
                "payout_if_wins_u": b.payout_if_wins_u,
            }
            for b in exposure.top
        ],
    }


@dataclass(frozen=True)
class UserRoundExposure:
    code: str
    status: str
    staked_u: dict[str, int]  # side -> stake
    payout_if_u: dict[str, int]  # result side -> what the user gets back if that side wins


def user_exposure(*, user_id: Any, codes: list[str] | None = None) -> list[UserRoundExposure]:
    """The user's stakes in each unsettled round (or in `codes`) and what each result would pay them."""
    rounds = (
        [round_get(code=code) for code in codes]
        if codes
        else list(Round.objects.filter(status__in=[Round.Status.OPEN, Round.Status.LOCKED]).order_by("code"))
    )
    found = []
    for round_ in rounds:
        up_u, down_u, _, _ = bet_round_totals(round_id=round_.pk, placed_only=False)
        terms = {
            "UP": payout_terms(side_u=up_u, other_u=down_u, fee_bps=round_.fee_bps),
            "DOWN": payout_terms(side_u=down_u, other_u=up_u, fee_bps=round_.fee_bps),
        }
        rows = bet_exposure_by_bettor(
            round_id=round_.pk, payout_terms={s: (t[1], t[2]) for s, t in terms.items()}, user_id=user_id
        )
        if not rows:
            continue
        staked = {side: sum(r.staked_u for r in rows if r.side == side) for side in SIDES}
        payout_if = {}
        for result in SIDES:
            if terms[result][3]:  # a VOID: every stake back
                payout_if[result] = staked["UP"] + staked["DOWN"]
            else:
                payout_if[result] = sum(r.payout_if_wins_u for r in rows if r.side == result)
        found.append(UserRoundExposure(code=round_.code, status=round_.status, staked_u=staked, payout_if_u=payout_if))
    return found


# --- the rules' view: one definition for the breaker and the alerts ------------------------------


@dataclass(frozen=True)
class Concern:
    rule: str  # "side_share" | "pool_over_cap"
    round_code: str
    text: str


def side_share_concern(*, code: str, side: str, staked_u: int, side_u: int, pool_u: int) -> Concern | None:
    """The one threshold of a bettor's share: more than OPS_BREAKER_STAKE_SHARE of a side, in a round
    whose pool is at least OPS_BREAKER_STAKE_SHARE_MIN_POOL_U. The breaker, the alerts, the gauges'
    readers and the terminal dashboard all ask this function."""
    if pool_u < settings.OPS_BREAKER_STAKE_SHARE_MIN_POOL_U:
        return None
    share_bps = int(round(settings.OPS_BREAKER_STAKE_SHARE * 10_000))
    bettor_bps = _bps(staked_u, side_u)
    if bettor_bps <= share_bps:
        return None
    return Concern(
        "side_share",
        code,
        f"one bettor holds {bettor_bps / 100:.0f}% of round {code}'s {side} side (limit {share_bps / 100:.0f}%)",
    )


def exposure_concerns(*, now: datetime | None = None) -> list[Concern]:
    """What looks wrong in the OPEN rounds' exposure now:

    - side_share: one bettor holds more than OPS_BREAKER_STAKE_SHARE of a side, in a round whose pool
      is at least OPS_BREAKER_STAKE_SHARE_MIN_POOL_U;
    - pool_over_cap: a pool above the round pool cap (possible only when the cap was lowered after).
    The circuit breaker trips on side_share (ops.rules.breaker_unusual_betting); alerts raise both.
    """
    concerns = []
    cap_u = house_limits_get().max_round_pool_u
    for round_ in rounds_open():
        exposure = round_exposure(code=round_.code, top=0, round_=round_)
        for bettor in exposure.largest.values():
            side_u = exposure.up.staked_u if bettor.side == "UP" else exposure.down.staked_u
            concern = side_share_concern(
                code=round_.code, side=bettor.side, staked_u=bettor.staked_u, side_u=side_u, pool_u=exposure.pool_u
            )
            if concern is not None:
                concerns.append(concern)
                break
        if cap_u is not None and exposure.pool_u > cap_u:
            concerns.append(
                Concern(
                    "pool_over_cap",
                    round_.code,
                    f"round {round_.code}'s pool {exposure.pool_u} u is over the round pool cap {cap_u} u",
                )
            )
    return concerns
