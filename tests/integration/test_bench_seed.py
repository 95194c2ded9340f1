"""The benchmark's accounts (bench/seed.py) stay signed in for the longest run: `bench.fanout
--rounds` keeps a system up through every rate and round, over an hour, and the session sweep
closes a socket whose token expired, which the run would count as lost deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend_services.core.security import TokenIssuer
from bench.seed import JWT_AUDIENCE, seed_group
from tests.support.stack import Stack

LONGEST_RUN = timedelta(hours=2)


def test_every_bench_token_outlasts_the_longest_run(stack: Stack) -> None:
    setup = seed_group(stack, 3, via="rest")
    issuer = TokenIssuer(stack.env["LETSCHAT_JWT_SECRET"], JWT_AUDIENCE, LONGEST_RUN)
    now = datetime.now(UTC)
    # The creator (first) logged in through the auth service, whose tokens are short.
    lasts = {a.username: issuer.decode(a.token).expires_at - now for a in setup.accounts}
    assert all(left > LONGEST_RUN for left in lasts.values()), lasts
    assert setup.last_seq() == 0  # The creator's token is one the message service takes.
