"""What an attacker can send: forged tokens, operator payloads, hostile origins and frames."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from backend_services.core.schemas import MAX_BODY_CHARS
from tests.support.clients import (
    PASSWORD,
    Account,
    Api,
    Frame,
    Socket,
    assert_error,
    send_frame,
    unique_name,
)
from tests.support.stack import ALLOWED_ORIGIN, JWT_SECRET, Stack

AUDIENCE = "letschat"
# AuthSettings.login_max_failures and MessageSettings.send_burst; the stack keeps the defaults.
MAX_FAILURES = 5
SEND_BURST = 30
MAX_FRAME_BYTES = 64 * 1024


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def still_open(socket: Socket) -> None:
    """A ping is answered: the socket survived whatever was sent before."""
    await socket.send({"type": "ping"})
    await socket.next("pong")
    assert socket.close_code is None


# --- tokens -------------------------------------------------------------------------------------


def claims(account: Account, **changes: Any) -> dict[str, Any]:
    """Valid claims for `account`'s session, with `changes` applied (None drops the claim)."""
    now = int(time.time())
    payload = {
        "sub": account.id,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "sid": account.session_id,
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def forge(payload: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


@dataclass(frozen=True)
class BadToken:
    token: str
    code: str = "unauthorized"
    close_code: int = 4501


def bad_tokens(account: Account) -> dict[str, BadToken]:
    now = int(time.time())
    unsigned = jwt.encode(claims(account), None, algorithm="none")
    signed = forge(claims(account))
    user_id = uuid.uuid4().hex
    return {
        "alg none": BadToken(unsigned),
        "alg none with a valid signature": BadToken(
            unsigned.rstrip(".") + "." + signed.rsplit(".", 1)[1]
        ),
        "HS512": BadToken(forge(claims(account), algorithm="HS512")),
        "wrong secret": BadToken(forge(claims(account), secret="x" * 48)),
        "expired": BadToken(
            forge(claims(account, iat=now - 120, exp=now - 60)), "token_expired", 4502
        ),
        "wrong audience": BadToken(forge(claims(account, aud="someone-else"))),
        "no audience": BadToken(forge(claims(account, aud=None))),
        "no jti": BadToken(forge(claims(account, jti=None))),
        "no exp": BadToken(forge(claims(account, exp=None))),
        "no iat": BadToken(forge(claims(account, iat=None))),
        "no sub": BadToken(forge(claims(account, sub=None))),
        "numeric jti": BadToken(forge(claims(account, jti=12345))),
        "no sid": BadToken(forge(claims(account, sid=None))),
        "numeric sid": BadToken(forge(claims(account, sid=7))),
        "unknown session": BadToken(forge(claims(account, sid=uuid.uuid4().hex))),
        "someone else's session": BadToken(forge(claims(account, sub=user_id))),
        "tampered payload": BadToken(tamper(signed, claims(account, sub=user_id))),
        "garbage": BadToken("not-a-jwt"),
    }


def tamper(token: str, payload: dict[str, Any]) -> str:
    """`token`'s header and signature around a different payload."""
    header, _, signature = token.split(".")
    body = forge(payload).split(".")[1]
    return f"{header}.{body}.{signature}"


async def test_a_token_forged_with_the_real_secret_is_accepted(stack: Stack, api: Api) -> None:
    # The control for the refusals below: the forging helper itself makes valid tokens.
    alice = await api.register("alice")
    token = forge(claims(alice))

    me = await api.http.get(f"{stack.auth_url}/auth/me", headers=bearer(token))
    assert me.json() == alice.user
    listed = await api.http.get(f"{stack.messages[0].url}/conversations", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    socket = await Socket.open(stack.messages[1].ws_url, token)
    assert socket.of_type("ready")[0]["user"] == alice.user
    await socket.close()


async def test_bad_tokens_are_refused_over_rest(
    stack: Stack, api: Api, subtests: pytest.Subtests
) -> None:
    alice = await api.register("alice")
    urls = [f"{stack.auth_url}/auth/me", f"{stack.messages[0].url}/conversations"]

    for name, bad in bad_tokens(alice).items():
        with subtests.test(name):
            for url in urls:
                response = await api.http.get(url, headers=bearer(bad.token))
                assert_error(response, 401, bad.code)
                assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_bad_tokens_are_refused_over_the_websocket(
    stack: Stack, api: Api, subtests: pytest.Subtests
) -> None:
    alice = await api.register("alice")

    for name, bad in bad_tokens(alice).items():
        with subtests.test(name):
            socket = await Socket.open(stack.messages[0].ws_url)
            await socket.send({"type": "auth", "token": bad.token})
            assert await socket.wait_closed() == bad.close_code
            assert socket.frames == []


async def test_a_socket_is_closed_when_its_token_expires(stack: Stack, api: Api) -> None:
    alice = await api.register("alice")
    now = int(time.time())
    token = forge(claims(alice, iat=now, exp=now + 3))
    socket = await Socket.open(stack.messages[0].ws_url, token, resume={})

    assert await socket.wait_closed(timeout=10) == 4502
    assert time.time() >= now + 3


# --- operator and mass-assignment payloads --------------------------------------------------------


async def test_operator_payloads_at_login_are_rejected_as_invalid(api: Api) -> None:
    alice = await api.register("alice")
    username = alice.user["username"]
    payloads: list[dict[str, Any]] = [
        {"username": {"$ne": None}, "password": {"$ne": None}},
        {"username": {"$gt": ""}, "password": {"$gt": ""}},
        {"username": username, "password": {"$ne": None}},
        {"username": {"$regex": f"^{username[:3]}"}, "password": PASSWORD},
        {"username": [username], "password": PASSWORD},
        {"username": username, "password": PASSWORD, "$where": "1 == 1"},
    ]

    for payload in payloads:
        response = await api.http.post(f"{api.auth_url}/auth/login", json=payload)
        body = assert_error(response, 422, "validation_error")
        assert "access_token" not in body


async def test_operator_and_extra_fields_at_registration_are_rejected(api: Api) -> None:
    name = unique_name()
    payloads: list[dict[str, Any]] = [
        {"username": {"$gt": ""}, "password": PASSWORD},
        {"username": name, "password": {"$ne": None}},
        {"username": name, "password": PASSWORD, "display_name": {"$ne": None}},
        {"username": name, "password": PASSWORD, "_id": "chosen-id"},
        {"username": name, "password": PASSWORD, "password_hash": "$2b$12$" + "a" * 53},
        {"username": name, "password": PASSWORD, "is_admin": True},
    ]

    for payload in payloads:
        response = await api.http.post(f"{api.auth_url}/auth/register", json=payload)
        assert_error(response, 422, "validation_error")
    nobody = await api.http.post(
        f"{api.auth_url}/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert_error(nobody, 401, "invalid_credentials")


async def test_operator_payloads_on_message_routes_are_rejected_as_invalid(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    group = await api.group(alice, bob)
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/conversations/direct", {"user_id": {"$ne": None}}),
        ("/conversations/groups", {"name": "g", "member_ids": [{"$ne": None}]}),
        ("/conversations/groups", {"name": {"$gt": ""}}),
        (f"/conversations/{dm}/messages", {"body": {"$ne": None}, "client_msg_id": "c1"}),
        (f"/conversations/{dm}/messages", {"body": "hi", "client_msg_id": {"$gt": ""}}),
        (f"/conversations/{dm}/messages", {"body": "hi", "client_msg_id": "c2", "seq": 1}),
        (f"/conversations/{dm}/read", {"seq": {"$gt": 0}}),
        (f"/conversations/{group}/members", {"user_id": {"$in": [bob.id]}}),
    ]

    for path, payload in requests:
        response = await api.call("POST", path, alice, json=payload)
        assert_error(response, 422, "validation_error")
    assert await api.messages(alice, dm) == []


# --- brute force and flooding --------------------------------------------------------------------


async def test_concurrent_guesses_cannot_outrun_the_login_throttle(api: Api) -> None:
    alice = await api.register("alice")

    guesses = await asyncio.gather(
        *(
            api.http.post(
                f"{api.auth_url}/auth/login",
                json={"username": alice.user["username"], "password": f"guess number {n}"},
            )
            for n in range(4 * MAX_FAILURES)
        )
    )

    statuses = sorted(response.status_code for response in guesses)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= MAX_FAILURES, f"{statuses.count(401)} passwords were tried"


async def test_rest_sends_are_rate_limited_per_user(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)

    responses = await asyncio.gather(
        *(
            api.call(
                "POST",
                f"/conversations/{dm}/messages",
                alice,
                json={"body": f"flood {n}", "client_msg_id": f"flood-{n}"},
            )
            for n in range(3 * SEND_BURST)
        )
    )

    statuses = [response.status_code for response in responses]
    assert set(statuses) == {201, 429}, statuses
    limited = [response for response in responses if response.status_code == 429]
    for response in limited:
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
    stored = await api.messages(bob, dm, limit=100)
    assert len(stored) == statuses.count(201)


async def test_websocket_sends_are_rate_limited_without_closing_the_socket(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    flood = 2 * SEND_BURST

    for n in range(flood):
        await socket.send(send_frame(dm, f"flood-{n}", f"flood {n}"))
    await socket.wait_for(lambda _: len(socket.of_type("ack") + socket.of_type("error")) == flood)

    limited = [f for f in socket.of_type("error") if f["code"] == "rate_limited"]
    assert limited, "no send was rate limited"
    assert len(limited) + len(socket.of_type("ack")) == flood
    assert all(f["retry_after"] >= 1 and f["client_msg_id"].startswith("flood-") for f in limited)
    await still_open(socket)
    await socket.close()


# --- hostile text -------------------------------------------------------------------------------


async def test_text_that_is_not_unicode_is_refused_not_crashed_on(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    lone_surrogate = "hi \\ud800 there"  # Valid JSON, but no UTF-8 encoding exists for it.
    requests = [
        (f"/conversations/{dm}/messages", f'{{"body": "{lone_surrogate}", "client_msg_id": "s1"}}'),
        ("/conversations/groups", f'{{"name": "{lone_surrogate}"}}'),
    ]

    for path, content in requests:
        response = await api.http.post(
            f"{api.message_url}{path}",
            content=content,
            headers={**alice.headers, "Content-Type": "application/json"},
        )
        assert_error(response, 422, "validation_error")


# --- websocket handshake and authentication ----------------------------------------------------


async def test_a_websocket_from_a_foreign_origin_is_refused_at_the_handshake(
    stack: Stack, api: Api
) -> None:
    alice = await api.register("alice")

    for origin in (
        "http://evil.test",
        "null",
        ALLOWED_ORIGIN + ".evil.test",
        "http://allowed.test:8080",
    ):
        with pytest.raises(InvalidStatus) as refused:
            await Socket.open(stack.messages[0].ws_url, alice.token, origin=origin)
        assert refused.value.response.status_code == 403, origin

    allowed = await Socket.open(stack.messages[0].ws_url, alice.token, origin=ALLOWED_ORIGIN)
    without_origin = await Socket.open(stack.messages[1].ws_url, alice.token)
    for socket in (allowed, without_origin):
        assert socket.of_type("ready")[0]["user"] == alice.user
        await socket.close()


async def test_a_socket_that_never_authenticates_is_closed_after_the_timeout(
    stack: Stack,
) -> None:
    started = time.monotonic()
    socket = await Socket.open(stack.messages[0].ws_url)

    assert await socket.wait_closed(timeout=15) == 4504
    # LETSCHAT_AUTH_TIMEOUT_SECONDS keeps its default of 5 s in the test stack.
    assert 4.5 <= time.monotonic() - started < 10


async def test_a_first_frame_other_than_auth_closes_the_socket(
    stack: Stack, api: Api, subtests: pytest.Subtests
) -> None:
    alice = await api.register("alice")
    first_frames: dict[str, Frame | str] = {
        "ping": {"type": "ping"},
        "resume": {"type": "resume", "cursors": {}},
        "send": send_frame("some-conversation", "c1"),
        "auth without token": {"type": "auth"},
        "auth with empty token": {"type": "auth", "token": ""},
        "auth with a non-string token": {"type": "auth", "token": {"$ne": None}},
        "auth with an oversized token": {"type": "auth", "token": alice.token + "x" * 5000},
        "auth with extra fields": {"type": "auth", "token": alice.token, "user_id": alice.id},
        "not json": "hello",
        "json array": "[]",
    }

    for name, frame in first_frames.items():
        with subtests.test(name):
            socket = await Socket.open(stack.messages[0].ws_url)
            await socket.send(frame)
            assert await socket.wait_closed() == 4500
            assert socket.of_type("ready") == []


# --- websocket frames after authentication -------------------------------------------------------


async def test_malformed_frames_get_an_error_and_the_socket_stays_open(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    frames: list[Frame | str] = [
        "{not json",
        '"a string"',
        "[1, 2]",
        '{"body": "no type"}',
        {"type": "shout", "body": "unknown type"},
        {"type": "send", "conversation_id": dm, "body": "no client_msg_id"},
        {"type": "send", "conversation_id": dm, "client_msg_id": "c1"},
        {"type": "send", "conversation_id": dm, "client_msg_id": "bad id!", "body": "x"},
        {"type": "read", "conversation_id": dm, "seq": -1},
        {"type": "read", "conversation_id": dm, "seq": "1"},
        {"type": "resume", "cursors": {dm: {"$gt": 0}}},
        {"type": "auth", "token": ""},
        {"type": "auth", "token": 7},
        '{"type": "send", "conversation_id": "x", "client_msg_id": "c", "body": "\\ud800"}',
    ]

    for frame in frames:
        await socket.send(frame)
        error = await socket.next("error")
        assert error["code"] == "bad_frame", (frame, error)
        assert error["message"]
        await still_open(socket)
    assert await api.messages(alice, dm) == []
    await socket.close()


async def test_a_nesting_bomb_gets_an_error_and_pipelined_sends_still_go(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={dm: 0})
    deep = "[" * 1000 + "]" * 1000  # 2 KB
    bombs = [
        deep,
        f'{{"type": "send", "conversation_id": "{dm}", "client_msg_id": "b1", "body": {deep}}}',
        f'{{"type": "resume", "cursors": {{"{dm}": {deep}}}}}',
    ]

    for bomb in bombs:  # Sent back to back with a real send behind them.
        await socket.send(bomb)
    await socket.send(send_frame(dm, "after-the-bombs", "still here"))

    await socket.next("ack", client_msg_id="after-the-bombs")
    errors = socket.of_type("error")
    assert [e["code"] for e in errors] == ["bad_frame"] * 3
    assert all("nest" in e["message"] for e in errors)
    await still_open(socket)
    assert [m["body"] for m in await api.messages(alice, dm)] == ["still here"]
    await socket.close()


async def test_a_frame_flood_is_read_at_the_budgets_pace_and_the_flooder_told_once_a_second(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    flooder = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bystander = await Socket.open(stack.messages[0].ws_url, bob.token, resume={dm: 0})
    burst, rate, flood = 200, 50, 400  # MessageSettings.frame_burst and frame_rate_per_second
    started = time.monotonic()

    for _ in range(flood - 2):  # Pings, reads and junk alike count.
        await flooder.send({"type": "ping"})
    await flooder.ws.send(b"binary")
    await flooder.send({"type": "read", "conversation_id": dm, "seq": 0})
    await flooder.next("error", code="rate_limited")

    # Bob is not slowed down by it: his send is acked as usual, while the flood waits.
    await bystander.send(send_frame(dm, "bob-1", "still quick"))
    await bystander.next("ack", client_msg_id="bob-1")
    assert len(flooder.of_type("pong")) < flood - 2
    # Nothing was dropped: every ping is answered, but no faster than the budget allows, and
    # the flooder was told so once a second meanwhile.
    await flooder.wait_for(lambda frames: len(flooder.of_type("pong")) == flood - 2, timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed >= (flood - burst) / rate * 0.8
    limited = [e for e in flooder.of_type("error") if e["code"] == "rate_limited"]
    assert 1 <= len(limited) <= elapsed + 2
    assert limited[0]["retry_after"] >= 1
    await flooder.next("error", code="bad_frame")  # The binary one, after them.
    assert flooder.close_code is None
    await flooder.close()
    await bystander.close()


async def test_a_binary_frame_gets_an_error_and_the_socket_stays_open(
    stack: Stack, api: Api
) -> None:
    alice = await api.register("alice")
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})

    await socket.ws.send(b'{"type": "ping"}')

    assert (await socket.next("error"))["code"] == "bad_frame"
    await still_open(socket)
    assert len(socket.of_type("pong")) == 1  # The binary ping was not answered.
    await socket.close()


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})

    just_under = send_frame(dm, "big", "x" * (MAX_FRAME_BYTES - 200))
    await socket.send(just_under)
    assert (await socket.next("error", client_msg_id="big"))["code"] == "message_too_long"
    await still_open(socket)

    await socket.send(send_frame(dm, "huge", "x" * MAX_FRAME_BYTES))
    assert await socket.wait_closed() == 1009
    assert await api.messages(alice, dm) == []


async def test_message_length_is_limited_in_characters(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})

    await socket.send(send_frame(dm, "long", "x" * (MAX_BODY_CHARS + 1)))
    error = await socket.next("error", client_msg_id="long")
    assert error["code"] == "message_too_long"
    assert error["conversation_id"] == dm
    await socket.send(send_frame(dm, "blank", " \n\t "))
    assert (await socket.next("error", client_msg_id="blank"))["code"] == "validation_error"

    await socket.send(send_frame(dm, "max", "x" * MAX_BODY_CHARS))
    await socket.send(send_frame(dm, "emoji", "😀" * MAX_BODY_CHARS))
    await socket.next("ack", client_msg_id="max")
    await socket.next("ack", client_msg_id="emoji")
    await still_open(socket)
    bodies = [m["body"] for m in await api.messages(bob, dm)]
    assert bodies == ["x" * MAX_BODY_CHARS, "😀" * MAX_BODY_CHARS]
    await socket.close()


# --- conversations a socket does not belong to -------------------------------------------------


async def test_sending_or_reading_where_you_are_not_a_member_is_not_found(
    stack: Stack, api: Api
) -> None:
    alice, bob, mallory = [await api.register(n) for n in ("alice", "bob", "mallory")]
    dm = await api.direct(alice, bob)
    group = await api.group(alice, bob)
    socket = await Socket.open(stack.messages[0].ws_url, mallory.token, resume={})
    targets = {"dm": dm, "private group": group, "missing": uuid.uuid4().hex}

    errors: dict[str, Frame] = {}
    for name, conversation_id in targets.items():
        await socket.send(send_frame(conversation_id, f"intrude-{name.replace(' ', '-')}"))
        errors[name] = await socket.next("error", conversation_id=conversation_id)
        await socket.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
        read_error = await socket.next("error", conversation_id=conversation_id)
        assert read_error["code"] == "not_found"

    assert {e["code"] for e in errors.values()} == {"not_found"}
    assert len({e["message"] for e in errors.values()}) == 1, errors
    await still_open(socket)
    assert await api.messages(alice, dm) == []
    assert await api.messages(alice, group) == []
    await socket.close()


async def test_an_outsider_neither_resumes_nor_receives_other_peoples_messages(
    stack: Stack, api: Api
) -> None:
    alice, bob, mallory = [await api.register(n) for n in ("alice", "bob", "mallory")]
    dm = await api.direct(alice, bob)
    group = await api.group(alice, bob)
    for conversation_id in (dm, group):
        await api.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            alice,
            json={"body": "before", "client_msg_id": "before"},
        )
    cursors = {dm: 0, group: 0}
    outsiders = [await Socket.open(s.ws_url, mallory.token, resume=cursors) for s in stack.messages]
    # Members on each instance: once they have the live messages, so would an outsider.
    members = [
        await Socket.open(stack.messages[0].ws_url, alice.token, resume={}),
        await Socket.open(stack.messages[1].ws_url, bob.token, resume={}),
    ]

    for conversation_id in (dm, group):
        await api.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            alice,
            json={"body": "live", "client_msg_id": "live"},
        )
    for member in members:
        await member.wait_for(
            lambda _, m=member: [x["body"] for x in m.messages()].count("live") == 2
        )

    for outsider in outsiders:
        await still_open(outsider)
        assert outsider.of_type("message") == []
        assert outsider.of_type("conversation") == []
        assert outsider.frames[-2:] == [{"type": "resumed"}, {"type": "pong"}]
        await outsider.close()
    for member in members:
        await member.close()


async def test_a_member_who_left_stops_receiving_the_groups_messages(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    # Alice on both instances: once both have her second message, so would bob.
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    a_elsewhere = await Socket.open(stack.messages[1].ws_url, alice.token, resume={})
    await a.send(send_frame(group, "m1", "while bob is in"))
    await b.next("message")

    assert (await api.call("POST", f"/conversations/{group}/leave", bob)).status_code == 204
    await b.next("left", conversation_id=group)
    returning = await Socket.open(stack.messages[0].ws_url, bob.token, resume={group: 0})
    await a.send(send_frame(group, "m2", "after bob left"))
    for socket in (a, a_elsewhere):
        await socket.wait_for(lambda _, s=socket: len(s.messages(group)) == 2)

    await still_open(b)
    await still_open(returning)
    assert [m["body"] for m in b.messages(group)] == ["while bob is in"]
    assert returning.messages(group) == []
    for socket in (a, a_elsewhere, b, returning):
        await socket.close()
