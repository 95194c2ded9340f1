"""The message service's REST API: conversations, membership, history, sending, read markers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from backend_services.core.schemas import MAX_BODY_CHARS
from tests.support.clients import Account, Api, assert_error, unique_name
from tests.support.stack import Stack


async def send(
    api: Api, account: Account, conversation_id: str, body: str, client_msg_id: str
) -> httpx.Response:
    return await api.call(
        "POST",
        f"/conversations/{conversation_id}/messages",
        account,
        json={"body": body, "client_msg_id": client_msg_id},
    )


async def send_many(api: Api, account: Account, conversation_id: str, count: int) -> None:
    for n in range(1, count + 1):
        assert (await send(api, account, conversation_id, f"m{n}", f"c{n}")).status_code == 201


async def page(
    api: Api, account: Account, conversation_id: str, **params: Any
) -> tuple[list[int], bool]:
    """The seqs of one page of history, and its `has_more`."""
    body = await api.ok("GET", f"/conversations/{conversation_id}/messages", account, params=params)
    return [m["seq"] for m in body["messages"]], body["has_more"]


# --- direct conversations -----------------------------------------------------------------------


async def test_a_direct_conversation_is_listed_for_both_people(api: Api) -> None:
    alice = await api.register("alice", display_name="Alice")
    bob = await api.register("bob", display_name="Bob")
    assert await api.ok("GET", "/conversations", alice) == []

    created = await api.call("POST", "/conversations/direct", alice, json={"user_id": bob.id})

    assert created.status_code == 201, created.text
    view = created.json()
    assert view["kind"] == "direct"
    assert view["name"] == "Bob"
    assert {m["id"] for m in view["members"]} == {alice.id, bob.id}
    assert (view["last_seq"], view["unread"], view["last_message"]) == (0, 0, None)
    [seen_by_bob] = await api.ok("GET", "/conversations", bob)
    assert seen_by_bob["id"] == view["id"]
    assert seen_by_bob["name"] == "Alice"
    assert await api.ok("GET", f"/conversations/{view['id']}", bob) == seen_by_bob


async def test_there_is_one_direct_conversation_per_pair_whoever_asks(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")

    first = await api.call("POST", "/conversations/direct", alice, json={"user_id": bob.id})
    again = await api.call("POST", "/conversations/direct", alice, json={"user_id": bob.id})
    other_side = await api.call("POST", "/conversations/direct", bob, json={"user_id": alice.id})

    assert [r.status_code for r in (first, again, other_side)] == [201, 200, 200]
    assert first.json()["id"] == again.json()["id"] == other_side.json()["id"]
    assert len(await api.ok("GET", "/conversations", alice)) == 1


def open_direct_from_both_sides(
    stack: Stack, api: Api, alice: Account, bob: Account, each: int
) -> list[Any]:
    """`each` requests from either side, spread over both instances, not yet awaited."""

    def open_direct(me: Account, other: Account, instance: int) -> Any:
        return api.http.post(
            f"{stack.messages[instance].url}/conversations/direct",
            headers=me.headers,
            json={"user_id": other.id},
        )

    return [open_direct(alice, bob, n % 2) for n in range(each)] + [
        open_direct(bob, alice, n % 2) for n in range(each)
    ]


async def test_concurrent_requests_from_both_sides_open_a_single_direct_conversation(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")

    responses = await asyncio.gather(*open_direct_from_both_sides(stack, api, alice, bob, 10))

    assert {r.status_code for r in responses} <= {200, 201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    for account in (alice, bob):
        assert len(await api.ok("GET", "/conversations", account)) == 1


async def test_exactly_one_concurrent_opener_is_told_it_created_the_conversation(
    stack: Stack, api: Api
) -> None:
    # The race is narrow: several pairs make a wrong answer likely to show.
    for _ in range(5):
        alice, bob = await api.register("alice"), await api.register("bob")

        responses = await asyncio.gather(*open_direct_from_both_sides(stack, api, alice, bob, 10))

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 19 + [201], statuses


async def test_a_direct_conversation_needs_another_existing_user(api: Api) -> None:
    alice = await api.register("alice")

    yourself = await api.call("POST", "/conversations/direct", alice, json={"user_id": alice.id})
    nobody = await api.call(
        "POST", "/conversations/direct", alice, json={"user_id": uuid.uuid4().hex}
    )

    assert_error(yourself, 422, "validation_error")
    assert_error(nobody, 404, "not_found")
    assert await api.ok("GET", "/conversations", alice) == []


# --- groups -------------------------------------------------------------------------------------


async def test_creating_a_group_adds_its_creator_and_members_once(api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]

    response = await api.call(
        "POST",
        "/conversations/groups",
        alice,
        json={"name": "  Book club ", "member_ids": [bob.id, carol.id, bob.id, alice.id]},
    )

    assert response.status_code == 201, response.text
    group = response.json()
    assert (group["kind"], group["name"], group["is_public"]) == ("group", "Book club", False)
    assert sorted(m["id"] for m in group["members"]) == sorted([alice.id, bob.id, carol.id])
    for member in (bob, carol):
        assert [c["id"] for c in await api.ok("GET", "/conversations", member)] == [group["id"]]


async def test_a_group_is_refused_with_an_unknown_member_or_a_bad_name(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")

    unknown = await api.call(
        "POST",
        "/conversations/groups",
        alice,
        json={"name": "g", "member_ids": [bob.id, uuid.uuid4().hex]},
    )
    assert_error(unknown, 404, "not_found")
    for name in ("", "   ", "x" * 81):
        response = await api.call("POST", "/conversations/groups", alice, json={"name": name})
        assert_error(response, 422, "validation_error")
    assert await api.ok("GET", "/conversations", bob) == []


async def test_group_search_lists_public_groups_by_name_prefix(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    prefix = unique_name("Club")
    public = await api.ok(
        "POST", "/conversations/groups", alice, json={"name": f"{prefix} public", "is_public": True}
    )
    await api.ok("POST", "/conversations/groups", alice, json={"name": f"{prefix} private"})

    found = await api.ok("GET", "/groups", bob, params={"q": prefix.lower()})

    assert found == [
        {"id": public["id"], "name": f"{prefix} public", "member_count": 1, "last_seq": 0}
    ]
    assert await api.ok("GET", "/groups", bob, params={"q": "(["}) == []
    assert_error(await api.call("GET", "/groups", params={"q": prefix}), 401, "unauthorized")
    for limit in (0, 101):
        response = await api.call("GET", "/groups", bob, params={"q": prefix, "limit": limit})
        assert_error(response, 422, "validation_error")


async def test_anyone_may_join_a_public_group_once(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, public=True)
    await send(api, alice, group, "welcome", "w1")

    joined = await api.ok("POST", f"/conversations/{group}/join", bob)
    again = await api.ok("POST", f"/conversations/{group}/join", bob)

    assert {m["id"] for m in joined["members"]} == {alice.id, bob.id}
    assert again["members"] == joined["members"]
    history = await api.messages(bob, group)
    assert [m["body"] for m in history if "system" not in m] == ["welcome"]
    # One line says he joined; joining again says nothing.
    assert [m["system"]["kind"] for m in history if "system" in m] == ["joined"]


async def test_a_private_group_or_direct_conversation_cannot_be_joined(api: Api) -> None:
    alice, bob, mallory = [await api.register(n) for n in ("alice", "bob", "mallory")]
    private = await api.group(alice, bob)
    dm = await api.direct(alice, bob)
    missing = await api.call("POST", f"/conversations/{uuid.uuid4().hex}/join", mallory)
    missing_body = assert_error(missing, 404, "not_found")

    for conversation_id in (private, dm):
        response = await api.call("POST", f"/conversations/{conversation_id}/join", mallory)
        assert response.status_code == 404
        assert response.json() == missing_body
    assert await api.ok("GET", "/conversations", mallory) == []


async def test_leaving_a_group_removes_it_but_a_direct_conversation_cannot_be_left(
    api: Api,
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    dm = await api.direct(alice, bob)

    left = await api.call("POST", f"/conversations/{group}/leave", bob)

    assert left.status_code == 204
    assert left.content == b""
    assert [c["id"] for c in await api.ok("GET", "/conversations", bob)] == [dm]
    assert_error(await api.call("GET", f"/conversations/{group}", bob), 404, "not_found")
    assert_error(await api.call("POST", f"/conversations/{group}/leave", bob), 404, "not_found")
    assert_error(await api.call("POST", f"/conversations/{dm}/leave", bob), 409, "conflict")
    view = await api.ok("GET", f"/conversations/{group}", alice)
    assert [m["id"] for m in view["members"]] == [alice.id]


async def test_a_member_can_add_people_to_a_group_but_not_to_a_direct_conversation(
    api: Api,
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.group(alice, bob)
    dm = await api.direct(alice, bob)

    added = await api.ok("POST", f"/conversations/{group}/members", bob, json={"user_id": carol.id})
    again = await api.ok("POST", f"/conversations/{group}/members", bob, json={"user_id": carol.id})

    assert {m["id"] for m in added["members"]} == {alice.id, bob.id, carol.id}
    assert again["members"] == added["members"]
    assert [c["id"] for c in await api.ok("GET", "/conversations", carol)] == [group]
    to_dm = await api.call(
        "POST", f"/conversations/{dm}/members", alice, json={"user_id": carol.id}
    )
    assert_error(to_dm, 409, "conflict")
    nobody = await api.call(
        "POST", f"/conversations/{group}/members", alice, json={"user_id": uuid.uuid4().hex}
    )
    assert_error(nobody, 404, "not_found")


# --- what outsiders see -------------------------------------------------------------------------


async def test_an_outsider_gets_the_same_not_found_as_for_a_missing_conversation(
    api: Api,
) -> None:
    alice, bob, mallory = [await api.register(n) for n in ("alice", "bob", "mallory")]
    group = await api.group(alice, bob)
    dm = await api.direct(alice, bob)
    await send(api, alice, group, "secret", "s1")
    await send(api, alice, dm, "secret", "s1")
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("GET", "/messages?after_seq=0", None),
        ("POST", "/messages", {"body": "let me in", "client_msg_id": "m1"}),
        ("POST", "/read", {"seq": 1}),
        ("POST", "/members", {"user_id": mallory.id}),
        ("POST", "/leave", None),
    ]

    for method, suffix, payload in routes:
        answers = []
        for conversation_id in (uuid.uuid4().hex, group, dm):
            response = await api.call(
                method, f"/conversations/{conversation_id}{suffix}", mallory, json=payload
            )
            answers.append((response.status_code, response.json()))
        assert answers[0][0] == 404
        assert answers[0][1]["code"] == "not_found"
        assert answers[1] == answers[0], (method, suffix)
        assert answers[2] == answers[0], (method, suffix)

    assert [m["body"] for m in await api.messages(alice, group)] == ["secret"]
    assert {
        m["id"] for m in (await api.ok("GET", f"/conversations/{group}", alice))["members"]
    } == {
        alice.id,
        bob.id,
    }


async def test_every_message_service_route_needs_a_token(api: Api) -> None:
    routes = [
        ("GET", "/conversations"),
        ("GET", "/conversations/x"),
        ("POST", "/conversations/direct"),
        ("POST", "/conversations/groups"),
        ("GET", "/groups"),
        ("POST", "/conversations/x/join"),
        ("POST", "/conversations/x/leave"),
        ("POST", "/conversations/x/members"),
        ("GET", "/conversations/x/messages"),
        ("POST", "/conversations/x/messages"),
        ("POST", "/conversations/x/read"),
    ]

    for method, path in routes:
        response = await api.call(method, path, json={})
        assert_error(response, 401, "unauthorized")


# --- sending ------------------------------------------------------------------------------------


async def test_a_sent_message_is_stored_trimmed_with_the_next_seq(api: Api) -> None:
    alice = await api.register("alice", display_name="Alice")
    bob = await api.register("bob")
    dm = await api.direct(alice, bob)

    first = await send(api, alice, dm, "  hello bob \n", "c1")
    second = await send(api, bob, dm, "hi alice", "c1")  # client_msg_ids are per sender.

    assert first.status_code == second.status_code == 201
    message = first.json()
    assert set(message) == {
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "sender_name",
        "body",
        "client_msg_id",
        "created_at",
    }
    assert (message["conversation_id"], message["seq"], message["body"]) == (dm, 1, "hello bob")
    assert (message["sender_id"], message["sender_name"]) == (alice.id, "Alice")
    assert second.json()["seq"] == 2
    assert await api.messages(bob, dm) == [message, second.json()]
    [listed] = await api.ok("GET", "/conversations", bob)
    assert listed["last_message"] == second.json()
    assert listed["last_seq"] == 2


async def test_a_resend_returns_the_stored_message_and_stores_nothing(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    first = await send(api, alice, dm, "only once", "c1")

    resent = await send(api, alice, dm, "only once", "c1")
    changed = await send(api, alice, dm, "edited on retry", "c1")

    assert first.status_code == 201
    assert (resent.status_code, changed.status_code) == (200, 200)
    assert resent.json() == changed.json() == first.json()
    assert await api.messages(bob, dm) == [first.json()]


async def test_message_bodies_must_be_non_blank_and_at_most_4000_characters(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)

    assert_error(
        await send(api, alice, dm, "x" * (MAX_BODY_CHARS + 1), "long"), 422, "message_too_long"
    )
    for blank in ("", "   ", "\n\t"):
        assert_error(await send(api, alice, dm, blank, "blank"), 422, "validation_error")
    for client_msg_id in ("", "has space", "x" * 65):
        response = await send(api, alice, dm, "hello", client_msg_id)
        assert_error(response, 422, "validation_error")
    missing = await api.call("POST", f"/conversations/{dm}/messages", alice, json={"body": "hi"})
    assert_error(missing, 422, "validation_error")
    assert await api.messages(bob, dm) == []

    assert (await send(api, alice, dm, "x" * MAX_BODY_CHARS, "max")).status_code == 201
    assert (await send(api, alice, dm, "é" * MAX_BODY_CHARS, "accents")).status_code == 201
    assert len(await api.messages(bob, dm)) == 2


# --- history ------------------------------------------------------------------------------------


async def test_history_pages_backwards_from_the_newest_in_ascending_order(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    assert await page(api, bob, dm) == ([], False)
    await send_many(api, alice, dm, 7)

    assert await page(api, bob, dm) == ([1, 2, 3, 4, 5, 6, 7], False)
    assert await page(api, bob, dm, limit=3) == ([5, 6, 7], True)
    assert await page(api, bob, dm, limit=3, before_seq=5) == ([2, 3, 4], True)
    assert await page(api, bob, dm, limit=3, before_seq=2) == ([1], False)
    assert await page(api, bob, dm, limit=3, before_seq=1) == ([], False)


async def test_history_pages_forwards_after_a_seq(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await send_many(api, alice, dm, 7)

    assert await page(api, bob, dm, limit=3, after_seq=2) == ([3, 4, 5], True)
    assert await page(api, bob, dm, limit=3, after_seq=5) == ([6, 7], False)
    assert await page(api, bob, dm, after_seq=7) == ([], False)
    assert await page(api, bob, dm, after_seq=2, before_seq=5) == ([3, 4], False)
    assert await page(api, bob, dm, limit=1, after_seq=2, before_seq=5) == ([3], True)


async def test_history_parameters_out_of_range_are_rejected(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await send_many(api, alice, dm, 3)
    invalid: list[dict[str, Any]] = [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "ten"},
        {"before_seq": -1},
        {"after_seq": -1},
        {"before_seq": 2**53 + 1},
        {"after_seq": "1; drop"},
        {"after_seq": 2, "before_seq": 3},
        {"after_seq": 3, "before_seq": 1},
    ]

    for params in invalid:
        response = await api.call("GET", f"/conversations/{dm}/messages", bob, params=params)
        assert_error(response, 422, "validation_error")
    assert await page(api, bob, dm, limit=100) == ([1, 2, 3], False)


# --- read markers -------------------------------------------------------------------------------


async def test_the_read_marker_moves_forward_only_and_never_past_the_last_message(
    api: Api,
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await send_many(api, alice, dm, 3)
    [before] = await api.ok("GET", "/conversations", bob)
    assert (before["unread"], before["last_read_seq"]) == (3, 0)

    async def mark(seq: int) -> Any:
        return await api.ok("POST", f"/conversations/{dm}/read", bob, json={"seq": seq})

    assert await mark(2) == {"conversation_id": dm, "seq": 2}
    assert await mark(1) == {"conversation_id": dm, "seq": 2}
    assert await mark(99) == {"conversation_id": dm, "seq": 3}
    [after] = await api.ok("GET", "/conversations", bob)
    assert (after["unread"], after["last_read_seq"]) == (0, 3)
    for seq in (-1, 2**53 + 1, "2"):
        response = await api.call("POST", f"/conversations/{dm}/read", bob, json={"seq": seq})
        assert_error(response, 422, "validation_error")


async def test_conversations_are_listed_newest_activity_first_with_unread_counts(
    api: Api,
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    dm = await api.direct(alice, bob)
    group = await api.group(carol, alice)
    assert [c["id"] for c in await api.ok("GET", "/conversations", alice)] == [group, dm]

    await send(api, bob, dm, "one", "b1")
    await send(api, bob, dm, "two", "b2")

    listed = await api.ok("GET", "/conversations", alice)
    assert [(c["id"], c["unread"]) for c in listed] == [(dm, 2), (group, 0)]
    [seen_by_bob] = await api.ok("GET", "/conversations", bob)
    assert (seen_by_bob["unread"], seen_by_bob["last_read_seq"]) == (0, 2)
