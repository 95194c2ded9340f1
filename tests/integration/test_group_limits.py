"""Nobody can bury someone in groups: adding people is limited per adder (on every instance at
once), nobody is in more than a set number of groups, the conversation list comes in pages,
and whoever is added learns who added them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import StackFactory
from tests.support.clients import Account, Api, Socket, assert_error, send_frame
from tests.support.stack import Stack


def messages_in(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages among `frames`, system lines ("Alice added Carol") left out."""
    return [
        f["message"] for f in frames if f.get("type") == "message" and "system" not in f["message"]
    ]


ADDS_PER_HOUR = 5
MAX_GROUPS = 3


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack(
        LETSCHAT_ADDS_PER_HOUR=str(ADDS_PER_HOUR),
        LETSCHAT_MAX_GROUPS_PER_USER=str(MAX_GROUPS),
    )


@pytest.fixture
async def apis(stack: Stack) -> list[Api]:
    """One client per message-service instance."""
    clients = [Api(stack.auth_url, service.url) for service in stack.messages]
    yield clients  # type: ignore[misc]
    for client in clients:
        await client.aclose()


async def _group(api: Api, owner: Account, *members: Account) -> httpx.Response:
    body = {"name": "g", "member_ids": [m.id for m in members]}
    return await api.call("POST", "/conversations/groups", owner, json=body)


async def _ids(api: Api, account: Account) -> list[str]:
    return [c["id"] for c in await api.ok("GET", "/conversations?limit=200", account)]


async def test_adding_people_is_limited_per_adder_across_instances(apis: list[Api]) -> None:
    first, second = apis
    alice = await first.register("alice")
    people = [await first.register(f"p{n}") for n in range(7)]

    # More than the whole allowance at once is refused outright, and spends none of it.
    too_many = await _group(first, alice, *people[:6])
    assert "at most 5 people" in assert_error(too_many, 429, "rate_limited")["message"]
    group = (await _group(first, alice, people[0], people[1])).json()["id"]  # 2 adds
    for person in people[2:4]:  # 2 more, through the other instance
        await second.ok(
            "POST", f"/conversations/{group}/members", alice, json={"user_id": person.id}
        )
    # 4 of 5 used: a group with two more is refused whole, on either instance.
    for api in apis:
        refused = await _group(api, alice, people[4], people[5])
        body = assert_error(refused, 429, "rate_limited")
        assert "at most 5 people" in body["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert await _ids(first, people[4]) == []
    # One more fits; then none.
    await first.ok("POST", f"/conversations/{group}/members", alice, json={"user_id": people[4].id})
    refused = await second.call(
        "POST", f"/conversations/{group}/members", alice, json={"user_id": people[5].id}
    )
    assert_error(refused, 429, "rate_limited")
    # Creating a group alone, or with people already in, adds nobody.
    assert (await _group(first, alice)).status_code == 201
    again = await first.call(
        "POST", f"/conversations/{group}/members", alice, json={"user_id": people[0].id}
    )
    assert again.status_code == 200


async def test_nobody_is_put_in_more_groups_than_the_limit(apis: list[Api]) -> None:
    api = apis[0]
    victim = await api.register("victim")
    spammers = [await api.register(f"s{n}") for n in range(MAX_GROUPS + 1)]
    for spammer in spammers[:MAX_GROUPS]:
        assert (await _group(api, spammer, victim)).status_code == 201
    refused = await _group(api, spammers[-1], victim)
    assert "in 3 groups" in assert_error(refused, 409, "conflict")["message"]
    empty = (await _group(api, spammers[-1])).json()["id"]
    refused = await api.call(
        "POST", f"/conversations/{empty}/members", spammers[-1], json={"user_id": victim.id}
    )
    assert_error(refused, 409, "conflict")
    assert len(await _ids(api, victim)) == MAX_GROUPS

    # The victim cannot join one more either, and is told so in their own terms.
    public = await api.ok(
        "POST", "/conversations/groups", spammers[-1], json={"name": "open", "is_public": True}
    )
    refused = await api.call("POST", f"/conversations/{public['id']}/join", victim)
    assert "You are in 3 groups" in assert_error(refused, 409, "conflict")["message"]
    # Leaving one makes room.
    first_group = (await _ids(api, victim))[0]
    await api.ok("POST", f"/conversations/{first_group}/leave", victim)
    assert (
        await api.call("POST", f"/conversations/{public['id']}/join", victim)
    ).status_code == 200


async def test_the_conversation_list_comes_in_pages(apis: list[Api]) -> None:
    api = apis[0]
    me = await api.register("me")
    others = [await api.register(f"o{n}") for n in range(7)]
    for other in others:
        await api.direct(me, other)
    everything = await _ids(api, me)
    assert len(everything) == 7

    seen: list[str] = []
    url: str | None = f"{api.message_url}/conversations?limit=3"
    sizes = []
    while url is not None:
        response = await api.http.get(url, headers=me.headers)
        assert response.status_code == 200, response.text
        page = [c["id"] for c in response.json()]
        sizes.append(len(page))
        seen += page
        following = response.links.get("next", {}).get("url")
        if following is not None:
            assert f"cursor={response.headers['X-Next-Cursor']}" in following
        url = following
    assert sizes == [3, 3, 1]
    assert seen == everything  # Newest activity first, none twice, none missed.

    for query in ("cursor=nonsense", "cursor=W10", "limit=0", "limit=201"):
        response = await api.call("GET", f"/conversations?{query}", me)
        assert_error(response, 422, "validation_error")


async def test_whoever_is_added_learns_who_added_them(stack: Stack, apis: list[Api]) -> None:
    api = apis[0]
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    sockets = {
        who.id: await Socket.open(stack.messages[1].ws_url, who.token, resume={})
        for who in (alice, bob, carol)
    }
    group = (await _group(api, alice, bob)).json()["id"]
    await api.ok("POST", f"/conversations/{group}/members", alice, json={"user_id": carol.id})

    created = await sockets[alice.id].next("conversation")
    assert "added_by" not in created
    for added in (bob, carol):
        frame = await sockets[added.id].next("conversation")
        assert frame["conversation"]["id"] == group
        assert frame["added_by"]["id"] == alice.id
        assert frame["added_by"]["username"] == alice.user["username"]
    # And they are in it, live.
    await sockets[alice.id].send(send_frame(group, "hi", "welcome"))
    for added in (bob, carol):
        await sockets[added.id].wait_for(
            lambda frames: any(m["body"] == "welcome" for m in messages_in(frames))
        )
    for socket in sockets.values():
        await socket.close()
