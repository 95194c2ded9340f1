"""The web app's token keeping (letschat_app/tokens.py): when to renew, and one refresh per
session at a time however many tabs ask."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backend_services.core.errors import RefreshTokenInvalid
from backend_services.core.locks import KeyedLocks
from backend_services.core.schemas import TokenResponse, User
from backend_services.core.security import RefreshTokens, TokenIssuer
from letschat_app import tokens
from letschat_app.state.models import describe_agent, describe_when

ISSUER = TokenIssuer(secret="s" * 40, audience="letschat", lifetime=timedelta(minutes=10))
REFRESH = RefreshTokens("s" * 40)
USER = User(id="u1", username="ada", display_name="Ada")
SESSION = "0123456789abcdef0123456789abcdef"


def test_a_token_is_due_when_a_fifth_of_its_life_is_left() -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    token, _ = ISSUER.issue("u1", SESSION, now=issued)
    start = issued.timestamp()

    assert tokens.renew_at(token) == start + 480
    assert not tokens.due(token, start + 479)
    assert tokens.due(token, start + 480)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.e30.c", "a.bnVsbA.c"])
def test_an_unreadable_token_is_due_at_once(token: str) -> None:
    assert tokens.renew_at(token) == 0.0
    assert tokens.due(token, 1.0)


def test_a_refresh_tokens_place_is_its_session_and_generation() -> None:
    first = REFRESH.first(SESSION)
    assert tokens.place_of(first.text) == tokens.Place(SESSION, 0)
    assert tokens.place_of(REFRESH.next(first).text) == tokens.Place(SESSION, 1)
    for text in ("", "x", "a.b.c.d", "a.-1.c.d"):
        assert tokens.place_of(text) is None


def test_a_token_is_behind_only_a_later_one_of_its_own_session() -> None:
    first = REFRESH.first(SESSION)
    second = REFRESH.next(first)
    other = REFRESH.first("f" * 32)

    assert tokens.behind(first.text, second.text)
    assert not tokens.behind(second.text, first.text)
    assert not tokens.behind(first.text, first.text)
    assert not tokens.behind(first.text, REFRESH.next(other).text)
    assert not tokens.behind("", second.text)
    assert not tokens.behind(first.text, "")


class FakeAuth:
    """The auth service's rotation, counting the refreshes it was asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def refresh(self, refresh_token: str) -> TokenResponse:
        self.calls.append(refresh_token)
        await self.gate.wait()
        following = REFRESH.next(REFRESH.parse(refresh_token))  # Refuses a forged token.
        access, _ = ISSUER.issue("u1", SESSION)
        return TokenResponse(
            user=USER,
            access_token=access,
            expires_in=600,
            refresh_token=following.text,
            session_id=SESSION,
        )


async def test_tabs_renewing_together_share_one_refresh() -> None:
    auth, keeper = FakeAuth(), tokens.TokenKeeper()
    first = REFRESH.first(SESSION).text
    auth.gate.clear()

    waiting = [asyncio.create_task(keeper.renew(first, auth.refresh)) for _ in range(5)]
    await asyncio.sleep(0)
    auth.gate.set()
    answers = await asyncio.gather(*waiting)

    assert auth.calls == [first]
    assert len({a.refresh_token for a in answers}) == 1


async def test_the_same_token_again_gets_the_answer_it_got_and_only_it() -> None:
    auth, keeper = FakeAuth(), tokens.TokenKeeper()
    first = REFRESH.first(SESSION).text
    newer = await keeper.renew(first, auth.refresh)

    again = await keeper.renew(first, auth.refresh)  # A tab that missed the other's refresh.

    assert again == newer
    assert auth.calls == [first]
    # Knowing the session proves nothing: a made-up token of it goes to the service, whose
    # answer (here: a refusal) is the tab's.
    forged = f"{SESSION}.0.{'A' * 43}.{'A' * 22}"
    with pytest.raises(RefreshTokenInvalid):
        await keeper.renew(forged, auth.refresh)
    assert auth.calls == [first, forged]


async def test_an_older_token_or_a_late_one_goes_to_the_service() -> None:
    auth, keeper = FakeAuth(), tokens.TokenKeeper(keep_seconds=0.0)
    first = REFRESH.first(SESSION).text
    second = await keeper.renew(first, auth.refresh)
    await keeper.renew(second.refresh_token, auth.refresh)

    await keeper.renew(first, auth.refresh)  # Two generations back, and past the keeping time.

    assert auth.calls == [first, second.refresh_token, first]


async def test_memory_is_bounded() -> None:
    auth, keeper = FakeAuth(), tokens.TokenKeeper(keep=3)
    for n in range(5):
        await keeper.renew(REFRESH.first(f"{n:032x}").text, auth.refresh)
    assert len(keeper) == 3


async def test_refresh_errors_reach_the_tab() -> None:
    keeper = tokens.TokenKeeper()

    async def refused(_: str) -> TokenResponse:
        raise PermissionError("ended")

    with pytest.raises(PermissionError):
        await keeper.renew(REFRESH.first(SESSION).text, refused)
    assert len(keeper) == 0


# --- the devices list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on macOS",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        ("", "Unknown device"),
    ],
)
def test_user_agents_are_shown_as_browser_and_system(agent: str, shown: str) -> None:
    assert describe_agent(agent) == shown


def test_last_use_is_shown_relative_to_now() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert describe_when(now - timedelta(seconds=20), now) == "just now"
    assert describe_when(now - timedelta(minutes=1), now) == "1 minute ago"
    assert describe_when(now - timedelta(hours=5, minutes=3), now) == "5 hours ago"
    assert describe_when(now - timedelta(days=40), now) == "40 days ago"
    assert describe_when(now + timedelta(minutes=2), now) == "just now"  # A clock ahead.


async def test_a_keyed_lock_is_shared_by_its_waiters_and_then_forgotten() -> None:
    locks, order = KeyedLocks(), []
    gate = asyncio.Event()

    async def holder(name: str) -> None:
        async with locks.hold("k"):
            order.append(f"{name} in")
            await gate.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(holder("a"))
    await asyncio.sleep(0)
    second, third = asyncio.create_task(holder("b")), asyncio.create_task(holder("c"))
    await asyncio.sleep(0)
    assert len(locks) == 1
    gate.set()
    await asyncio.gather(first, second, third)

    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert len(locks) == 0
