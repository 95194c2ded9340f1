"""Sessions that last: refresh-token rotation and reuse detection, the sessions list, password
changes, login throttling per username and per address, and whose X-Forwarded-For is believed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.integration.conftest import StackFactory
from tests.support.clients import PASSWORD, Account, Api, Socket, assert_error, unique_name
from tests.support.stack import Stack


@contextlib.asynccontextmanager
async def api_on(make_stack: StackFactory, **overrides: str) -> AsyncIterator[tuple[Stack, Api]]:
    """A stack of its own (one message instance) with `overrides`, and a client for it."""
    stack = make_stack(instances=1, **overrides)
    api = Api(stack.auth_url, stack.messages[0].url)
    try:
        yield stack, api
    finally:
        await api.aclose()


async def refresh(api: Api, refresh_token: Any, **headers: str) -> httpx.Response:
    return await api.http.post(
        f"{api.auth_url}/auth/refresh", json={"refresh_token": refresh_token}, headers=headers
    )


async def refreshed(api: Api, account: Account) -> Account:
    response = await refresh(api, account.refresh_token)
    assert response.status_code == 200, response.text
    return Account.signed_in(response.json())


async def login(
    api: Api, username: str, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    return await api.http.post(
        f"{api.auth_url}/auth/login",
        json={"username": username, "password": password},
        headers=headers,
    )


async def signed_in_again(api: Api, account: Account, **headers: str) -> Account:
    """A second session of `account`'s user (another device)."""
    response = await login(api, account.user["username"], **headers)
    assert response.status_code == 200, response.text
    return Account.signed_in(response.json())


async def assert_ended(api: Api, stack: Stack, account: Account, code: str) -> dict[str, Any]:
    """`account`'s session is over: its refresh token answers `code`, its access token is
    refused by every service and socket. Returns the refresh answer."""
    body = assert_error(await refresh(api, account.refresh_token), 401, code)
    assert_error(await api.call("GET", "/auth/me", account), 401, "token_revoked")
    for service in stack.messages:
        response = await api.http.get(f"{service.url}/conversations", headers=account.headers)
        assert_error(response, 401, "token_revoked")
    socket = await Socket.open(stack.messages[0].ws_url)
    await socket.send({"type": "auth", "token": account.token})
    assert await socket.wait_closed() == 4503
    assert socket.of_type("ready") == []
    return body


# --- rotation -----------------------------------------------------------------------------------


async def test_a_refresh_gives_a_new_pair_and_keeps_the_session(api: Api) -> None:
    account = await api.register("alice")

    second = await refreshed(api, account)

    assert second.session_id == account.session_id
    assert second.user == account.user
    assert second.refresh_token != account.refresh_token
    assert second.token != account.token
    assert await api.ok("GET", "/auth/me", second) == account.user
    assert (await api.call("GET", "/conversations", second)).status_code == 200
    third = await refreshed(api, second)
    assert third.refresh_token not in {account.refresh_token, second.refresh_token}


async def test_the_token_just_replaced_gets_the_same_answer_during_the_grace(api: Api) -> None:
    account = await api.register("alice")
    second = await refreshed(api, account)

    again = await refreshed(api, account)  # An answer lost on the way, asked for again.

    assert again.refresh_token == second.refresh_token
    third = await refreshed(api, again)
    assert (await api.call("GET", "/auth/me", third)).status_code == 200


async def test_two_tabs_refreshing_at_once_both_stay_signed_in(api: Api) -> None:
    account = await api.register("alice")

    answers = await asyncio.gather(*(refresh(api, account.refresh_token) for _ in range(6)))

    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert len({a.json()["refresh_token"] for a in answers}) == 1
    tabs = [Account.signed_in(a.json()) for a in answers]
    for tab in tabs:
        assert (await api.call("GET", "/auth/me", tab)).status_code == 200
    # Whichever tab refreshes next, the chain goes on.
    assert (await refreshed(api, tabs[3])).session_id == account.session_id


async def test_reuse_of_an_older_token_ends_the_whole_session(stack: Stack, api: Api) -> None:
    account = await api.register("alice")
    other_device = await signed_in_again(api, account)
    second = await refreshed(api, account)
    third = await refreshed(api, second)
    socket = await Socket.open(stack.messages[1].ws_url, third.token, resume={})

    stolen = await refresh(api, account.refresh_token)  # Two generations behind.

    assert_error(stolen, 401, "refresh_token_reused")
    assert await socket.wait_closed() == 4503
    for holder in (second, third):
        assert (await assert_ended(api, stack, holder, "refresh_token_reused"))["message"]
    # Another device's session is its own family: it goes on.
    assert (await refreshed(api, other_device)).session_id == other_device.session_id


async def test_reuse_after_the_grace_ends_the_session(make_stack: StackFactory) -> None:
    async with api_on(make_stack, LETSCHAT_REFRESH_GRACE_SECONDS="0") as (stack, api):
        account = await api.register("alice")
        second = await refreshed(api, account)

        assert_error(await refresh(api, account.refresh_token), 401, "refresh_token_reused")

        await assert_ended(api, stack, second, "refresh_token_reused")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "a" * 512,
        "0123456789abcdef0123456789abcdef.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
async def test_malformed_or_forged_refresh_tokens_are_invalid(api: Api, bad: str) -> None:
    if not bad:
        assert_error(await refresh(api, bad), 422, "validation_error")
        return
    assert_error(await refresh(api, bad), 401, "refresh_token_invalid")


async def test_a_forged_token_for_a_real_session_does_not_end_it(api: Api) -> None:
    account = await api.register("alice")
    session_id, generation, secret, tag = account.refresh_token.split(".")
    forged = f"{session_id}.{generation}.{'A' * len(secret)}.{tag}"
    older = f"{session_id}.{int(generation) + 5}.{secret}.{tag}"

    for token in (forged, older):
        assert_error(await refresh(api, token), 401, "refresh_token_invalid")

    assert (await refreshed(api, account)).session_id == account.session_id


async def test_refresh_requests_that_are_not_a_token_are_validation_errors(api: Api) -> None:
    url = f"{api.auth_url}/auth/refresh"
    for body in ({}, {"refresh_token": 7}, {"refresh_token": None}, {"refresh_token": ["x"]}):
        assert_error(await api.http.post(url, json=body), 422, "validation_error")
    account = await api.register("alice")
    extra = {"refresh_token": account.refresh_token, "user_id": "someone"}
    assert_error(await api.http.post(url, json=extra), 422, "validation_error")
    assert_error(
        await api.http.post(
            url, content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "validation_error",
    )


async def test_a_refresh_for_a_deleted_account_is_refused(stack: Stack, api: Api) -> None:
    account = await api.register("alice")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.env["LETSCHAT_MONGODB_URL"])
    try:
        users = client[stack.env["LETSCHAT_MONGODB_DB"]]["users"]
        assert (await users.delete_one({"_id": account.id})).deleted_count == 1
    finally:
        await client.close()

    body = assert_error(await refresh(api, account.refresh_token), 401, "refresh_token_invalid")
    assert "no longer exists" in body["message"]
    assert_error(await refresh(api, account.refresh_token), 401, "refresh_token_invalid")


async def test_refreshes_are_rate_limited_per_session(make_stack: StackFactory) -> None:
    async with api_on(
        make_stack, LETSCHAT_REFRESH_BURST="3", LETSCHAT_REFRESH_RATE_PER_SECOND="0.01"
    ) as (_, api):
        account = await api.register("alice")
        other_device = await signed_in_again(api, account)  # Same address, its own session.
        for _ in range(3):
            account = await refreshed(api, account)

        limited = await refresh(api, account.refresh_token)

        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0
        assert (await refreshed(api, other_device)).session_id == other_device.session_id
        # Tokens that are not valid are limited per address.
        codes = [(await refresh(api, f"junk-{n}")).status_code for n in range(4)]
        assert codes == [401, 401, 401, 429]


async def test_an_ended_reason_this_version_does_not_know_is_just_ended(
    stack: Stack, api: Api
) -> None:
    account = await api.register("alice")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.env["LETSCHAT_MONGODB_URL"])
    try:
        sessions = client[stack.env["LETSCHAT_MONGODB_DB"]]["sessions"]
        await sessions.update_one(
            {"_id": account.session_id}, {"$set": {"ended_reason": "from-a-later-version"}}
        )
    finally:
        await client.close()

    await assert_ended(api, stack, account, "refresh_token_revoked")


async def test_an_idle_session_expires_and_says_so(make_stack: StackFactory) -> None:
    # 0.00003 days is 2.6 s: a session unused for that long is over.
    async with api_on(
        make_stack, LETSCHAT_SESSION_IDLE_DAYS="0.00003", LETSCHAT_SESSION_MAX_DAYS="1"
    ) as (_, api):
        account = await api.register("alice")
        listed = await api.ok("GET", "/auth/sessions", account)
        expires_at = datetime.fromisoformat(listed[0]["expires_at"]).timestamp()
        account = await refreshed(api, account)  # Used: it slides.
        listed = await api.ok("GET", "/auth/sessions", account)
        slid_to = datetime.fromisoformat(listed[0]["expires_at"]).timestamp()
        assert slid_to > expires_at

        await asyncio.sleep(max(0.0, slid_to - time.time()) + 0.2)  # Until the clock says so.

        assert_error(await refresh(api, account.refresh_token), 401, "refresh_token_expired")
        assert_error(await api.call("GET", "/auth/me", account), 401, "token_revoked")


# --- the live socket ----------------------------------------------------------------------------


async def test_a_socket_takes_a_fresh_token_and_outlives_the_old_one(
    make_stack: StackFactory,
) -> None:
    async with api_on(make_stack, LETSCHAT_ACCESS_TOKEN_SECONDS="2") as (stack, api):
        account = await api.register("alice")
        bob = await api.register("bob")  # Refreshed when used: tokens last 2 s here.
        socket = await Socket.open(stack.messages[0].ws_url, account.token, resume={})
        first_expiry = time.time() + 2
        while time.time() < first_expiry + 3:  # Well past the first token's expiry.
            account = await refreshed(api, account)
            await socket.send({"type": "auth", "token": account.token})
            await socket.next("authed", expires_at=_after(time.time()))
            await asyncio.sleep(0.5)
        await socket.send({"type": "ping"})
        await socket.next("pong")
        assert socket.close_code is None

        bob = await refreshed(api, bob)
        await socket.send({"type": "auth", "token": bob.token})  # Someone else: refused.
        error = await socket.next("error", frame_type="auth")
        assert error["code"] == "bad_frame"
        await socket.send({"type": "auth", "token": "not-a-token"})  # Garbage: as at the start.
        assert await socket.wait_closed() == 4501


def _after(moment: float) -> Any:
    class Later:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, str) and datetime.fromisoformat(other).timestamp() > moment

    return Later()


# --- the sessions list --------------------------------------------------------------------------


async def test_sessions_list_every_device_and_which_one_is_this(api: Api) -> None:
    laptop = await api.register("alice")
    phone = await signed_in_again(api, laptop, **{"User-Agent": "LetsChat-Phone/1.0"})
    someone_else = await api.register("bob")

    listed = await api.ok("GET", "/auth/sessions", phone)

    assert [s["id"] for s in listed] == [phone.session_id, laptop.session_id]
    assert [s["current"] for s in listed] == [True, False]
    assert listed[0]["user_agent"] == "LetsChat-Phone/1.0"
    assert {s["client_network"] for s in listed} == {"127.0.0.0/24"}
    assert set(listed[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "user_agent",
        "client_network",
        "current",
    }
    assert someone_else.session_id not in {s["id"] for s in listed}
    mine = await api.ok("GET", "/auth/sessions", laptop)
    assert [s["current"] for s in mine] == [False, True]


async def test_ending_a_session_from_another_device(stack: Stack, api: Api) -> None:
    laptop = await api.register("alice")
    phone = await signed_in_again(api, laptop)
    socket = await Socket.open(stack.messages[0].ws_url, laptop.token, resume={})

    response = await api.call("DELETE", f"/auth/sessions/{laptop.session_id}", phone)

    assert response.status_code == 204, response.text
    assert await socket.wait_closed() == 4503
    body = await assert_ended(api, stack, laptop, "refresh_token_revoked")
    assert "another of your devices" in body["message"]
    assert [s["id"] for s in await api.ok("GET", "/auth/sessions", phone)] == [phone.session_id]
    again = await api.call("DELETE", f"/auth/sessions/{laptop.session_id}", phone)
    assert_error(again, 404, "not_found")


async def test_nobody_can_end_or_see_someone_elses_session(api: Api) -> None:
    alice = await api.register("alice")
    mallory = await api.register("mallory")

    for session_id in (alice.session_id, "0" * 32, "x" * 129):
        response = await api.call("DELETE", f"/auth/sessions/{session_id}", mallory)
        assert response.status_code in {404, 422}, response.text
    assert (await refreshed(api, alice)).session_id == alice.session_id
    assert_error(await api.call("GET", "/auth/sessions"), 401, "unauthorized")


async def test_logout_ends_this_session_and_logout_elsewhere_the_rest(
    stack: Stack, api: Api
) -> None:
    laptop = await api.register("alice")
    phone = await signed_in_again(api, laptop)
    tablet = await signed_in_again(api, laptop)

    ended = await api.ok("POST", "/auth/sessions/end-others", tablet)

    assert ended == {"ended": 2}
    for device in (laptop, phone):
        await assert_ended(api, stack, device, "refresh_token_revoked")
    assert (await api.call("POST", "/auth/logout", tablet)).status_code == 204
    body = await assert_ended(api, stack, tablet, "refresh_token_revoked")
    assert body["message"] == "You were logged out."


# --- passwords ----------------------------------------------------------------------------------


async def test_changing_the_password_ends_every_other_session(stack: Stack, api: Api) -> None:
    laptop = await api.register("alice")
    phone = await signed_in_again(api, laptop)
    url = "/auth/password"
    new = "a new passphrase"

    wrong = await api.call(
        "POST", url, laptop, json={"current_password": "nope", "new_password": new}
    )
    assert_error(wrong, 403, "wrong_password")
    short = await api.call(
        "POST", url, laptop, json={"current_password": PASSWORD, "new_password": "x"}
    )
    assert_error(short, 422, "validation_error")
    assert (await refreshed(api, phone)).session_id == phone.session_id  # Nothing ended yet.

    changed = await api.ok(
        "POST", url, laptop, json={"current_password": PASSWORD, "new_password": new}
    )

    assert changed == {"ended": 1}
    body = await assert_ended(api, stack, phone, "refresh_token_revoked")
    assert "password was changed" in body["message"]
    assert (await refreshed(api, laptop)).session_id == laptop.session_id
    username = laptop.user["username"]
    assert_error(await login(api, username), 401, "invalid_credentials")
    assert (await login(api, username, new)).status_code == 200


async def test_wrong_current_passwords_are_throttled(api: Api) -> None:
    alice = await api.register("alice")
    body = {"current_password": "nope", "new_password": "a new passphrase"}
    for _ in range(5):  # AuthSettings.login_max_failures
        assert_error(
            await api.call("POST", "/auth/password", alice, json=body), 403, "wrong_password"
        )

    locked = await api.call(
        "POST", "/auth/password", alice, json={**body, "current_password": PASSWORD}
    )

    assert_error(locked, 429, "too_many_attempts")


# --- login throttling ---------------------------------------------------------------------------


async def test_a_flood_of_made_up_names_is_throttled_per_address(make_stack: StackFactory) -> None:
    async with api_on(
        make_stack,
        LETSCHAT_TRUSTED_PROXIES="127.0.0.1",
        LETSCHAT_LOGIN_MAX_FAILURES_PER_ADDRESS="8",
    ) as (_, api):
        alice = await api.register("alice")
        flood = {"X-Forwarded-For": "203.0.113.7"}
        answers = await asyncio.gather(
            *(login(api, unique_name("made-up"), "guess", **flood) for _ in range(12))
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [401] * 8 + [429] * 4, codes

        # From there nothing gets through, not even a right password...
        blocked = await login(api, alice.user["username"], **flood)
        assert_error(blocked, 429, "too_many_attempts")
        # ...while everyone else logs in as usual.
        response = await login(api, alice.user["username"], **{"X-Forwarded-For": "198.51.100.2"})
        assert response.status_code == 200, response.text


async def test_one_username_is_throttled_whatever_address_guesses(make_stack: StackFactory) -> None:
    async with api_on(make_stack, LETSCHAT_TRUSTED_PROXIES="127.0.0.1") as (_, api):
        alice = await api.register("alice")
        username = alice.user["username"]
        for n in range(5):  # AuthSettings.login_max_failures
            response = await login(api, username, "guess", **{"X-Forwarded-For": f"192.0.2.{n}"})
            assert_error(response, 401, "invalid_credentials")

        locked = await login(api, username, **{"X-Forwarded-For": "192.0.2.99"})

        assert_error(locked, 429, "too_many_attempts")
        bob = await api.register("bob")
        assert (await login(api, bob.user["username"])).status_code == 200


async def test_retrying_a_locked_username_does_not_lock_out_its_address(
    make_stack: StackFactory,
) -> None:
    async with api_on(
        make_stack,
        LETSCHAT_TRUSTED_PROXIES="127.0.0.1",
        LETSCHAT_LOGIN_MAX_FAILURES_PER_ADDRESS="8",
    ) as (_, api):
        alice, bob = await api.register("alice"), await api.register("bob")
        attacker, office = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.2"}
        for _ in range(5):  # Someone locks Alice's name from elsewhere.
            await login(api, alice.user["username"], "guess", **attacker)

        # Alice, at the office, tries again and again: her name is locked...
        for _ in range(10):
            response = await login(api, alice.user["username"], **office)
            assert_error(response, 429, "too_many_attempts")

        # ...but her colleagues at the same address are not.
        assert (await login(api, bob.user["username"], **office)).status_code == 200


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(api: Api) -> None:
    # The default stack trusts nobody: rotating the header does not dodge the address count.
    alice = await api.register("alice")

    seen = await signed_in_again(api, alice, **{"X-Forwarded-For": "198.51.100.9"})

    listed = await api.ok("GET", "/auth/sessions", seen)
    assert {s["client_network"] for s in listed} == {"127.0.0.0/24"}


async def test_a_trusted_proxy_reports_the_nearest_untrusted_address(
    make_stack: StackFactory,
) -> None:
    async with api_on(make_stack, LETSCHAT_TRUSTED_PROXIES="127.0.0.1,10.1.0.0/16") as (_, api):
        alice = await api.register("alice")
        cases = {
            "198.51.100.9": "198.51.100.0/24",
            # What a client wrote on the left is not believed; the proxies' part is.
            "6.6.6.6, 198.51.100.9, 10.1.2.3": "198.51.100.0/24",
            "2001:db8:1234:5678::1": "2001:db8:1234::/48",
            "not an address, 198.51.100.9": "198.51.100.0/24",
        }
        for header, network in cases.items():
            device = await signed_in_again(api, alice, **{"X-Forwarded-For": header})
            listed = await api.ok("GET", "/auth/sessions", device)
            current = next(s for s in listed if s["current"])
            assert current["client_network"] == network, header
