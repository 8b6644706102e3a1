from dataclasses import dataclass


@dataclass(frozen=True)
class Halt:
    code: str  # "emergency_stop" or "circuit_breaker"
    reason: str


def betting_halt() -> Halt | None:
    """Why betting (and withdrawal processing) must stop now, or None.

    Placeholder until the emergency stop and circuit breaker land (operations issue);
    bet_place and withdrawal processing already call it.
    """
    return None
