"""The benchmark's accounts (bench/seed.py) stay signed in for the longest run: `bench.fanout
--rounds 3` keeps a system up through every rate and round, over an hour, and the session sweep
closes a socket whose token expired, which the run would count as lost deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from backend_services.core.security import TokenIssuer
from bench.seed import JWT_AUDIENCE, TOKEN_LIFETIME, seed_group
from tests.support.stack import Stack

LONGEST_RUN = timedelta(hours=2)


def test_every_bench_token_outlasts_the_longest_run(stack: Stack) -> None:
    setup = seed_group(stack, 3, via="rest")
    issuer = TokenIssuer(stack.env["LETSCHAT_JWT_SECRET"], JWT_AUDIENCE, TOKEN_LIFETIME)
    now = datetime.now(UTC)
    # The creator (first) logged in through the auth service, whose tokens are short.
    lasts = {a.username: issuer.decode(a.token).expires_at - now for a in setup.accounts}
    assert all(left > LONGEST_RUN for left in lasts.values()), lasts
    creator = setup.accounts[0]
    response = httpx.get(
        f"{setup.message_url}/conversations/{setup.group_id}",
        headers={"Authorization": f"Bearer {creator.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text  # The message service takes it.
