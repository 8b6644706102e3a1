from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.models import Account
from ledger.services import account_ensure
from rounds.models import Round


def round_create(
    code: str = "20250908", *, status: str = Round.Status.OPEN, lock_in: timedelta = timedelta(hours=2)
) -> Round:
    """A round whose lock time is `lock_in` from now, with its pool account (what round_open makes,
    without the calendar: these tests are about betting, not about trading days)."""
    now = timezone.now()
    round_ = Round.objects.create(
        code=code,
        symbol="NDX",
        status=status,
        lock_at=now + lock_in,
        settle_at=now + lock_in + timedelta(minutes=5),
        fee_bps=100,
        commit_hash="0" * 64,
    )
    account_ensure(code=Account.round_pool_code(code), kind=Account.Kind.ROUND_POOL)
    return round_


@pytest.fixture
def open_round(db):
    return round_create()
