"""How a round's facts are written for people (the admin's messages and History entries)."""

from common.money import format_usdc
from common.text import plural
from rounds.models import RoundSettlement


def settlement_sentence(settlement: RoundSettlement) -> str:
    """The admin's one sentence for a settlement (its message and its History entry)."""
    return (
        f"Round {settlement.round.code} settled {settlement.result}: paid "
        f"{format_usdc(settlement.paid_out_u, exact=True)} to "
        f"{plural(settlement.winners_count, 'winning bet')}, fee "
        f"{format_usdc(settlement.fee_u, exact=True)}, "
        f"dust {format_usdc(settlement.dust_u, exact=True)}."
    )
