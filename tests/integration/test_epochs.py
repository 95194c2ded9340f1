"""Cursors from another history: a conversation restored to an older state (from a backup) is
known as such by its epoch, and a client resuming from a cursor into the lost history is told
to start the conversation over instead of silently missing what took its old seqs."""

from __future__ import annotations

import asyncio
import sys

from pymongo import AsyncMongoClient

from tests.support.clients import Account, Api, Frame, Socket
from tests.support.processes import REPO_ROOT
from tests.support.stack import Stack


async def _send(api: Api, account: Account, dm: str, bodies: list[str]) -> None:
    for body in bodies:
        await api.ok(
            "POST",
            f"/conversations/{dm}/messages",
            account,
            json={"body": body, "client_msg_id": f"c-{body}"},
        )


async def _view(api: Api, account: Account, dm: str) -> Frame:
    return dict(await api.ok("GET", f"/conversations/{dm}", account))


async def _restore_to(stack: Stack, dm: str, seq: int) -> None:
    """What a backup taken when the conversation stood at `seq` brings back."""
    client: AsyncMongoClient[Frame] = AsyncMongoClient(stack.env["LETSCHAT_MONGODB_URL"])
    try:
        db = client[stack.env["LETSCHAT_MONGODB_DB"]]
        await db["messages"].delete_many({"conversation_id": dm, "seq": {"$gt": seq}})
        newest = await db["messages"].find_one({"conversation_id": dm, "seq": seq})
        await db["conversation_state"].update_one(
            {"_id": dm},
            {"$set": {"last_seq": seq, "last_message_seq": seq, "last_message": newest}},
        )
    finally:
        await client.close()


async def _resume(stack: Stack, account: Account, cursors: dict[str, object]) -> Socket:
    socket = await Socket.open(stack.messages[1].ws_url, account.token)
    await socket.send({"type": "resume", "cursors": cursors})
    await socket.next("resumed", timeout=15)
    return socket


def _stream(socket: Socket) -> list[tuple[str, object]]:
    """Resets and messages, in the order they came."""
    return [
        ("reset", f["epoch"]) if f["type"] == "reset" else ("message", f["message"]["seq"])
        for f in socket.frames
        if f.get("type") in {"reset", "message"}
    ]


async def test_after_a_restore_and_new_epochs_an_old_cursor_starts_over(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await _send(api, alice, dm, [f"old-{n}" for n in range(1, 21)])
    before = await _view(api, bob, dm)
    assert before["last_seq"] == 20

    await _restore_to(stack, dm, 10)
    tool = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend_services.message_service.epochs",
        env=stack.env,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, _ = await tool.communicate()
    assert tool.returncode == 0
    assert b"new epoch" in out
    # New messages take the seqs the old history had used: 11 to 23.
    await _send(api, alice, dm, [f"new-{n}" for n in range(11, 24)])
    after = await _view(api, bob, dm)
    assert after["epoch"] != before["epoch"]

    socket = await _resume(stack, bob, {dm: {"seq": 20, "epoch": before["epoch"]}})
    assert _stream(socket) == [("reset", after["epoch"])] + [("message", n) for n in range(1, 24)]
    bodies = [m["body"] for m in socket.messages(dm)]
    assert bodies == [f"old-{n}" for n in range(1, 11)] + [f"new-{n}" for n in range(11, 24)]
    await socket.close()

    # A cursor in the current epoch resumes as always.
    socket = await _resume(stack, bob, {dm: {"seq": 21, "epoch": after["epoch"]}})
    assert _stream(socket) == [("message", 22), ("message", 23)]
    await socket.close()


async def test_a_cursor_past_the_stored_history_renews_the_epoch_for_every_client(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await _send(api, alice, dm, [f"old-{n}" for n in range(1, 21)])
    epoch = (await _view(api, bob, dm))["epoch"]

    await _restore_to(stack, dm, 10)  # Nobody renewed the epochs.
    # Bob's laptop comes back first, at 20: past everything stored, so the history went back.
    laptop = await _resume(stack, bob, {dm: {"seq": 20, "epoch": epoch}})
    (reset,) = laptop.of_type("reset")
    assert reset["epoch"] != epoch
    assert [m["seq"] for m in laptop.messages(dm)] == list(range(1, 11))
    await laptop.close()

    # Messages go on from 11; Bob's phone, at 15 in the old history, is not inside the new one.
    await _send(api, alice, dm, [f"new-{n}" for n in range(11, 18)])
    phone = await _resume(stack, bob, {dm: {"seq": 15, "epoch": epoch}})
    assert [f["epoch"] for f in phone.of_type("reset")] == [reset["epoch"]]
    assert [m["body"] for m in phone.messages(dm)][10:] == [f"new-{n}" for n in range(11, 18)]
    await phone.close()

    # A client that sends bare seqs is caught when its cursor runs past the history.
    await _restore_to(stack, dm, 12)
    bare = await _resume(stack, bob, {dm: 17})
    assert len(bare.of_type("reset")) == 1
    assert [m["seq"] for m in bare.messages(dm)] == list(range(1, 13))
    await bare.close()
