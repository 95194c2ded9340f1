"""TokenKeeper's per-token locks (letschat_app/tokens.py) go with the last tab that held or
waited for one: memory is bounded by the renewals under way."""

from __future__ import annotations

import asyncio

from letschat_app import tokens
from letschat_protocol import TokenResponse, User

USER = User(id="u1", username="ada", display_name="Ada")


async def test_a_tokens_lock_is_shared_while_renewing_and_then_forgotten() -> None:
    keeper = tokens.TokenKeeper()
    gate, calls = asyncio.Event(), []

    async def refresh(refresh_token: str) -> TokenResponse:
        calls.append(refresh_token)
        await gate.wait()
        return TokenResponse(
            user=USER, access_token="a", expires_in=600, refresh_token="r2", session_id="s"
        )

    tabs = [asyncio.create_task(keeper.renew("r1", refresh)) for _ in range(3)]
    await asyncio.sleep(0)
    assert len(keeper._locks) == 1
    gate.set()
    answers = await asyncio.gather(*tabs)

    assert calls == ["r1"]
    assert {answer.refresh_token for answer in answers} == {"r2"}
    assert len(keeper._locks) == 0
