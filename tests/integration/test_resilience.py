"""Nothing is lost or duplicated: dropped sockets, killed instances, concurrent senders, resends."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import StackFactory
from tests.support.clients import Api, Frame, Socket, send_frame
from tests.support.stack import Stack


def assert_in_order_once(messages: list[Frame], expected_bodies: list[str]) -> None:
    assert [m["body"] for m in messages] == expected_bodies
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(set(seqs)), f"out of order or duplicated: {seqs}"


async def test_a_client_that_was_away_resumes_exactly_what_it_missed(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    await a.send(send_frame(dm, "before"))
    cursor = (await b.next("message"))["message"]["seq"]
    await b.close()

    for n in range(3):
        await a.send(send_frame(dm, f"away{n}"))
        await a.next("ack", client_msg_id=f"away{n}")

    back = await Socket.open(stack.messages[0].ws_url, bob.token, resume={dm: cursor})
    assert_in_order_once(back.messages(dm), ["body of away0", "body of away1", "body of away2"])
    assert back.frames[-1] == {"type": "resumed"}
    await a.send(send_frame(dm, "live"))
    await back.wait_for(lambda _: len(back.messages(dm)) == 4)
    assert [m["body"] for m in back.messages(dm)][-1] == "body of live"
    await a.close()
    await back.close()


async def test_resume_without_a_cursor_delivers_a_new_conversation(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await api.ok(
        "POST", f"/conversations/{dm}/messages", alice, json={"body": "hello", "client_msg_id": "h"}
    )

    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={"some-other-id": 5})

    assert [m["body"] for m in b.messages(dm)] == ["hello"]
    await b.close()


async def test_resume_sends_the_newest_300_and_says_where_to_page_from(
    make_stack: StackFactory,
) -> None:
    # 305 sends pipelined: more than a socket's frame budget and a user's send burst allow.
    stack = make_stack(LETSCHAT_SEND_BURST="1000", LETSCHAT_FRAME_BURST="1000")
    api = Api(stack.auth_url, stack.messages[0].url)
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    for n in range(305):
        await a.send(send_frame(dm, f"c{n}"))
    await a.wait_for(lambda _: len(a.of_type("ack")) == 305, timeout=60)
    await a.close()

    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={dm: 2})

    limited = b.of_type("limited")
    assert limited == [{"type": "limited", "conversation_id": dm, "next_seq": 6}]
    assert b.frames.index(limited[0]) < b.frames.index(next(iter(b.of_type("message"))))
    assert [m["seq"] for m in b.messages(dm)] == list(range(6, 306))
    older = await api.messages(bob, dm, before_seq=6, after_seq=2)
    assert [m["seq"] for m in older] == [3, 4, 5]
    await b.close()
    await api.aclose()


async def test_kill_9_of_an_instance_loses_and_duplicates_nothing(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    doomed, survivor = stack.messages
    a = await Socket.open(doomed.ws_url, alice.token, resume={})
    b = await Socket.open(doomed.ws_url, bob.token, resume={})
    sent: list[str] = []

    for n in range(5):
        sent.append(f"m{n}")
        await a.send(send_frame(dm, f"m{n}"))
    await b.wait_for(lambda _: len(b.messages(dm)) == 5)
    # Fire more without waiting for acks, then kill the instance mid-stream.
    for n in range(5, 10):
        sent.append(f"m{n}")
        await a.send(send_frame(dm, f"m{n}"))
    doomed.kill()
    api.message_url = survivor.url
    await b.wait_closed()
    await a.wait_closed()

    acked = {f["client_msg_id"] for f in a.of_type("ack")}
    bob_seen = b.messages(dm)
    # Alice reconnects elsewhere and resends whatever was not acked, with the same ids.
    a2 = await Socket.open(survivor.ws_url, alice.token, resume={dm: 0})
    for client_msg_id in sent:
        if client_msg_id not in acked:
            await a2.send(send_frame(dm, client_msg_id))
            await a2.next("ack", client_msg_id=client_msg_id)
    for n in range(10, 13):
        sent.append(f"m{n}")
        await a2.send(send_frame(dm, f"m{n}"))
        await a2.next("ack", client_msg_id=f"m{n}")

    cursor = bob_seen[-1]["seq"] if bob_seen else 0
    b2 = await Socket.open(survivor.ws_url, bob.token, resume={dm: cursor})
    await b2.wait_for(lambda _: len(bob_seen) + len(b2.messages(dm)) >= len(sent))
    everything = bob_seen + b2.messages(dm)
    assert sorted(m["client_msg_id"] for m in everything) == sorted(sent)
    seqs = [m["seq"] for m in everything]
    assert seqs == sorted(set(seqs))
    stored = await api.messages(alice, dm, limit=100)
    assert sorted(m["client_msg_id"] for m in stored) == sorted(sent)
    await a2.close()
    await b2.close()


async def test_fifty_concurrent_senders_on_two_instances_get_unique_gap_free_seqs(
    stack: Stack, api: Api
) -> None:
    members = [await api.register("m") for _ in range(10)]
    group = await api.group(members[0], *members[1:])
    senders = [
        await Socket.open(stack.messages[i % 2].ws_url, members[i % 10].token, resume={})
        for i in range(50)
    ]
    watcher = await Socket.open(stack.messages[1].ws_url, members[0].token, resume={})

    await asyncio.gather(*(s.send(send_frame(group, f"c{i}")) for i, s in enumerate(senders)))
    acks = await asyncio.gather(
        *(s.next("ack", client_msg_id=f"c{i}") for i, s in enumerate(senders))
    )

    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 51))
    await watcher.wait_for(lambda _: len(watcher.messages(group)) >= 50)
    assert [m["seq"] for m in watcher.messages(group)] == list(range(1, 51))
    for socket in [*senders, watcher]:
        await socket.close()


async def test_a_resend_is_stored_once_and_delivered_once(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    a1 = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    a2 = await Socket.open(stack.messages[1].ws_url, alice.token, resume={})
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    await a1.send(send_frame(dm, "same", "once"))
    first = (await a1.next("ack", client_msg_id="same"))["message"]
    await a2.send(send_frame(dm, "same", "once"))
    again = (await a2.next("ack", client_msg_id="same"))["message"]
    rest = await api.call(
        "POST",
        f"/conversations/{dm}/messages",
        alice,
        json={"body": "once", "client_msg_id": "same"},
    )

    assert again == first
    assert rest.status_code == 200
    assert rest.json() == first
    await a1.send(send_frame(dm, "next"))
    await b.wait_for(lambda _: any(m["client_msg_id"] == "next" for m in b.messages(dm)))
    assert [m["client_msg_id"] for m in b.messages(dm)] == ["same", "next"]
    assert [m["client_msg_id"] for m in await api.messages(bob, dm)] == ["same", "next"]
    for socket in (a1, a2, b):
        await socket.close()


async def test_concurrent_duplicate_sends_store_one_message_and_do_not_stall(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    tabs = [
        await Socket.open(stack.messages[i % 2].ws_url, alice.token, resume={}) for i in range(6)
    ]
    b = await Socket.open(stack.messages[0].ws_url, bob.token, resume={})

    await asyncio.gather(*(t.send(send_frame(dm, "dup", "racing")) for t in tabs))
    acked = [(await t.next("ack", client_msg_id="dup"))["message"] for t in tabs]
    await tabs[0].send(send_frame(dm, "after"))
    await tabs[0].next("ack", client_msg_id="after")

    assert len({m["id"] for m in acked}) == 1
    await b.wait_for(lambda _: len(b.messages(dm)) == 2, timeout=5)
    assert [m["client_msg_id"] for m in b.messages(dm)] == ["dup", "after"]
    for socket in (*tabs, b):
        await socket.close()


async def test_sigterm_closes_sockets_with_1012_and_clients_resume_elsewhere(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    restarting, other = stack.messages
    b = await Socket.open(restarting.ws_url, bob.token, resume={})

    restarting.stop()  # SIGTERM
    api.message_url = other.url

    assert await b.wait_closed() == 1012
    await api.ok(
        "POST",
        f"/conversations/{dm}/messages",
        alice,
        json={"body": "while away", "client_msg_id": "w"},
    )
    b2 = await Socket.open(other.ws_url, bob.token, resume={dm: 0})
    assert [m["body"] for m in b2.messages(dm)] == ["while away"]
    await b2.close()


async def test_pipelined_frames_are_answered_in_the_order_they_were_sent(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    ids = [f"p{n}" for n in range(20)]

    for client_msg_id in ids:
        await a.send(send_frame(dm, client_msg_id))
    await a.send({"type": "ping"})

    await a.next("pong")
    acks = a.of_type("ack")
    assert [ack["client_msg_id"] for ack in acks] == ids  # All answered before the ping.
    assert [ack["message"]["seq"] for ack in acks] == list(range(1, 21))
    await a.close()


async def test_messages_sent_just_before_the_socket_closes_are_stored_and_delivered(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bodies = [f"parting words {n}" for n in range(5)]

    for n, body in enumerate(bodies):  # Sent faster than they can be stored, then the tab closes.
        await a.send(send_frame(dm, f"parting-{n}", body))
    await a.close()

    await b.wait_for(lambda _: len(b.messages(dm)) == len(bodies))
    assert [m["body"] for m in b.messages(dm)] == bodies
    assert [m["body"] for m in await api.messages(bob, dm)] == bodies
    await b.close()
