"""bench.fanout's python-socketio peer: one instance of a group chat on python-socketio.

Written as a python-socketio user would write it: an `AsyncServer` on uvicorn (the same
server, event loop and WebSocket implementation as the message service), `AsyncRedisManager`
so that several instances share rooms through Redis, and pymongo's `AsyncMongoClient`. Like the
relay it has no auth: a client `join`s a room, and a `send` into a room it joined is inserted
into MongoDB (one insert into a collection of its own), emitted to the room and acknowledged.

    python -m bench.peers.sio_server   # settings from PEER_* (see bench/peers/__init__.py)
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import socketio
import uvicorn
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

# The same frame limit the relay and the message service have.
MAX_FRAME_BYTES = 64 * 1024
COLLECTION = "socketio_messages"
logger = logging.getLogger("bench.peers.sio_server")


async def _readyz(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain `GET /readyz`, so the harness polls this peer like the real services."""
    found = scope["type"] == "http" and scope["path"] == "/readyz"
    status, body = (200, b"ok\n") if found else (404, b"")
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def create_app(mongo_url: str, db_name: str, redis_url: str, channel: str) -> socketio.ASGIApp:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(redis_url, channel=channel),
        max_http_buffer_size=MAX_FRAME_BYTES,
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    messages = mongo[db_name][COLLECTION]

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "joined"

    @sio.on("send")
    async def send(sid: str, frame: dict[str, str]) -> dict[str, str]:
        room = frame["conversation_id"]
        if room not in sio.rooms(sid):
            return {"error": "not_a_member"}
        created_at = datetime.now(UTC)
        document = {
            "conversation_id": room,
            "sender_id": sid,
            "body": frame["body"],
            "client_msg_id": frame["client_msg_id"],
            "created_at": created_at,
        }
        try:
            await messages.insert_one(document)
        except PyMongoError:
            logger.exception("insert failed")
            return {"error": "service_unavailable"}
        message = {
            "id": str(document["_id"]),
            "conversation_id": room,
            "sender_id": sid,
            "body": frame["body"],
            "client_msg_id": frame["client_msg_id"],
            "created_at": created_at.isoformat(),
        }
        await sio.emit("message", message, room=room)
        return {"id": message["id"], "created_at": message["created_at"]}

    async def startup() -> None:
        # A conversation's history is read newest first, a page at a time.
        await messages.create_index([("conversation_id", 1), ("_id", -1)])

    async def shutdown() -> None:
        await sio.shutdown()
        await mongo.close()

    return socketio.ASGIApp(sio, other_asgi_app=_readyz, on_startup=startup, on_shutdown=shutdown)


def main() -> None:
    env = os.environ
    app = create_app(
        env["PEER_MONGODB_URL"], env["PEER_MONGODB_DB"], env["PEER_REDIS_URL"], env["PEER_CHANNEL"]
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(env["PEER_PORT"]),
        loop="uvloop",
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=env.get("PEER_COMPRESSION") == "true",
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
