"""The auth service against a real database: accounts, passwords, login throttling, sessions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from tests.support.clients import PASSWORD, Account, Api, Socket, assert_error, unique_name
from tests.support.stack import JWT_SECRET, Stack

# AuthSettings.login_max_failures; the test stack leaves it at its default.
MAX_FAILURES = 5
# Access tokens live LETSCHAT_ACCESS_TOKEN_SECONDS (default 10 minutes).
TOKEN_SECONDS = 10 * 60


async def register(
    api: Api, username: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return await api.http.post(
        f"{api.auth_url}/auth/register",
        json={"username": username, "password": password, **extra},
    )


async def login(api: Api, username: str, password: str = PASSWORD) -> httpx.Response:
    return await api.http.post(
        f"{api.auth_url}/auth/login", json={"username": username, "password": password}
    )


def account_from(response: httpx.Response) -> Account:
    return Account.signed_in(response.json())


def assert_token_response(response: httpx.Response, status: int, username: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {
        "user",
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "session_id",
    }
    assert set(body["user"]) == {"id", "username", "display_name"}
    assert body["user"]["username"] == username
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == TOKEN_SECONDS
    return dict(body)


# --- registration -----------------------------------------------------------------------------


async def test_register_returns_the_user_and_a_signed_access_token(api: Api) -> None:
    username = unique_name("alice")

    body = assert_token_response(await register(api, username), 201, username)

    assert body["user"]["display_name"] == username
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="letschat")
    assert claims["sub"] == body["user"]["id"]
    assert claims["exp"] - claims["iat"] == TOKEN_SECONDS
    assert claims["jti"]
    assert claims["sid"] == body["session_id"]


async def test_display_name_is_trimmed_and_returned(api: Api) -> None:
    username = unique_name("alice")

    response = await register(api, username, display_name="  Alice Liddell ")

    assert response.status_code == 201, response.text
    assert response.json()["user"]["display_name"] == "Alice Liddell"
    me = await api.ok("GET", "/auth/me", account_from(response))
    assert me["display_name"] == "Alice Liddell"


async def test_a_mixed_case_username_is_stored_lower_cased(api: Api) -> None:
    username = unique_name("alice")

    response = await register(api, username.replace("alice", "Alice"))

    assert_token_response(response, 201, username)
    assert (await login(api, username.upper())).status_code == 200


async def test_usernames_are_unique_whatever_their_case(api: Api) -> None:
    username = unique_name("alice")
    assert (await register(api, username)).status_code == 201

    for taken in (username, username.upper(), f"  {username} ", username.capitalize()):
        assert_error(await register(api, taken, "another password"), 409, "username_taken")


async def test_malformed_usernames_are_rejected(api: Api) -> None:
    for username in ("ab", "a" * 33, "has space", "semi;colon", "tab\tname", "émile", "x😀y", ""):
        assert_error(await register(api, username), 422, "validation_error")


async def test_password_length_is_counted_in_characters_from_8_to_128(api: Api) -> None:
    assert_error(await register(api, unique_name(), "7chars!"), 422, "validation_error")
    assert_error(await register(api, unique_name(), "x" * 129), 422, "validation_error")
    assert_error(await register(api, unique_name(), "😀" * 129), 422, "validation_error")

    for password in ("8 chars!", "x" * 128, "😀" * 128):
        username = unique_name()
        assert (await register(api, username, password)).status_code == 201, password[:10]
        assert (await login(api, username, password)).status_code == 200, password[:10]


async def test_long_passwords_differing_only_after_byte_72_are_different_passwords(
    api: Api,
) -> None:
    # bcrypt alone reads 72 bytes; the service pre-hashes so that the rest still counts.
    common = "p" * 80
    username = unique_name()
    assert (await register(api, username, common + "1" * 20)).status_code == 201

    assert_error(await login(api, username, common + "2" * 20), 401, "invalid_credentials")
    assert_error(await login(api, username, common), 401, "invalid_credentials")
    assert (await login(api, username, common + "1" * 20)).status_code == 200


# --- login --------------------------------------------------------------------------------------


async def test_login_issues_a_fresh_token_for_the_same_user(api: Api) -> None:
    account = await api.register("alice")
    username = account.user["username"]

    body = assert_token_response(await login(api, username.upper()), 200, username)

    assert body["user"] == account.user
    assert body["access_token"] != account.token
    me = await api.http.get(
        f"{api.auth_url}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json() == account.user


async def test_unknown_user_and_wrong_password_get_the_identical_answer(api: Api) -> None:
    account = await api.register("alice")

    wrong_password = await login(api, account.user["username"], "not the password")
    unknown_user = await login(api, unique_name("nobody"), "not the password")

    assert_error(wrong_password, 401, "invalid_credentials")
    assert unknown_user.status_code == wrong_password.status_code
    assert unknown_user.json() == wrong_password.json()


async def test_repeated_failures_lock_the_username_for_that_client(api: Api) -> None:
    account = await api.register("alice")
    username = account.user["username"]
    for _ in range(MAX_FAILURES):
        assert_error(await login(api, username, "not the password"), 401, "invalid_credentials")

    locked = await login(api, username)  # Even the right password: guessing must stop.

    assert_error(locked, 429, "too_many_attempts")
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= 300
    assert_error(await login(api, username.upper(), "not the password"), 429, "too_many_attempts")
    other = await api.register("bob")
    assert (await login(api, other.user["username"])).status_code == 200


async def test_an_unknown_username_is_throttled_like_a_known_one(api: Api) -> None:
    username = unique_name("nobody")
    for _ in range(MAX_FAILURES):
        assert_error(await login(api, username, "not the password"), 401, "invalid_credentials")

    locked = await login(api, username, "not the password")

    assert_error(locked, 429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) > 0


async def test_a_successful_login_clears_earlier_failures(api: Api) -> None:
    account = await api.register("alice")
    username = account.user["username"]
    for _ in range(MAX_FAILURES - 1):
        assert_error(await login(api, username, "not the password"), 401, "invalid_credentials")
    assert (await login(api, username)).status_code == 200

    for _ in range(MAX_FAILURES - 1):
        assert_error(await login(api, username, "not the password"), 401, "invalid_credentials")
    assert (await login(api, username)).status_code == 200


# --- sessions -----------------------------------------------------------------------------------


async def test_me_needs_a_bearer_token(api: Api) -> None:
    account = await api.register("alice")
    assert await api.ok("GET", "/auth/me", account) == account.user

    for authorization in (None, account.token, "Bearer", f"Basic {account.token}"):
        headers = {"Authorization": authorization} if authorization else {}
        response = await api.http.get(f"{api.auth_url}/auth/me", headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_logout_revokes_the_token_on_every_service_and_socket(stack: Stack, api: Api) -> None:
    account = await api.register("alice")
    assert (await api.call("POST", "/auth/logout", account)).status_code == 204

    assert_error(await api.call("GET", "/auth/me", account), 401, "token_revoked")
    for message_service in stack.messages:
        response = await api.http.get(
            f"{message_service.url}/conversations", headers=account.headers
        )
        assert_error(response, 401, "token_revoked")
        socket = await Socket.open(message_service.ws_url)
        await socket.send({"type": "auth", "token": account.token})
        assert await socket.wait_closed() == 4503
        assert socket.of_type("ready") == []
    assert_error(await api.call("POST", "/auth/logout", account), 401, "token_revoked")


async def test_logout_leaves_the_users_other_sessions_alone(api: Api) -> None:
    account = await api.register("alice")
    second = (await login(api, account.user["username"])).json()["access_token"]

    assert (await api.call("POST", "/auth/logout", account)).status_code == 204

    response = await api.http.get(
        f"{api.message_url}/conversations", headers={"Authorization": f"Bearer {second}"}
    )
    assert response.status_code == 200, response.text


async def test_logout_closes_open_sockets_on_every_instance_within_a_second(
    stack: Stack, api: Api
) -> None:
    account = await api.register("alice")
    sockets = [await Socket.open(s.ws_url, account.token, resume={}) for s in stack.messages]

    started = time.monotonic()
    assert (await api.call("POST", "/auth/logout", account)).status_code == 204
    codes = await asyncio.gather(*(socket.wait_closed(timeout=5) for socket in sockets))

    # The stack sweeps sessions every 0.5 s; allow one sweep, one round trip and a busy box.
    assert time.monotonic() - started < 1.5
    assert codes == [4503, 4503]


# --- people search ------------------------------------------------------------------------------


async def test_user_search_finds_others_by_prefix_and_never_yourself(api: Api) -> None:
    prefix = unique_name("team")
    alice = await api.register(f"{prefix}a")
    bob = await api.register(f"{prefix}b")
    await api.register("outsider")

    found = await api.ok("GET", "/users", alice, params={"q": prefix.upper()})

    assert found == [bob.user]
    assert set(found[0]) == {"id", "username", "display_name"}
    everyone_but_bob = await api.ok("GET", "/users", bob, params={"q": prefix})
    assert everyone_but_bob == [alice.user]


async def test_user_search_treats_the_query_as_text_not_a_pattern(api: Api) -> None:
    alice = await api.register("alice")
    await api.register("bob")

    for pattern in (".*", "^", "[a-z]", "(", "\\"):
        assert await api.ok("GET", "/users", alice, params={"q": pattern}) == [], pattern


async def test_user_search_needs_a_token_and_a_sane_limit(api: Api) -> None:
    alice = await api.register("alice")

    assert_error(await api.call("GET", "/users", params={"q": "a"}), 401, "unauthorized")
    for limit in (0, 51, "many"):
        response = await api.call("GET", "/users", alice, params={"q": "a", "limit": limit})
        assert_error(response, 422, "validation_error")
