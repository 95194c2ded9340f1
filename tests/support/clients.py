"""Async clients for tests: REST over httpx, WebSocket over `websockets`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Frame = dict[str, Any]
PASSWORD = "correct horse battery"


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def send_frame(conversation_id: str, client_msg_id: str, body: str | None = None) -> Frame:
    """A `send` frame; the body defaults to one naming the client_msg_id."""
    return {
        "type": "send",
        "conversation_id": conversation_id,
        "client_msg_id": client_msg_id,
        "body": f"body of {client_msg_id}" if body is None else body,
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error `{code, message}` with `status`; return its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return dict(body)


@dataclass
class Account:
    user: dict[str, Any]
    token: str
    password: str = PASSWORD
    refresh_token: str = ""
    session_id: str = ""

    @classmethod
    def signed_in(cls, body: dict[str, Any], password: str = PASSWORD) -> Account:
        """From a register, login or refresh answer."""
        return cls(
            body["user"], body["access_token"], password, body["refresh_token"], body["session_id"]
        )

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    auth_url: str
    message_url: str
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    async def register(self, prefix: str = "u", **extra: Any) -> Account:
        username = unique_name(prefix)
        response = await self.http.post(
            f"{self.auth_url}/auth/register",
            json={"username": username, "password": PASSWORD, **extra},
        )
        assert response.status_code == 201, response.text
        return Account.signed_in(response.json())

    async def call(
        self, method: str, path: str, account: Account | None = None, **kwargs: Any
    ) -> httpx.Response:
        base = self.auth_url if path.startswith(("/auth", "/users")) else self.message_url
        headers = account.headers if account else {}
        return await self.http.request(method, f"{base}{path}", headers=headers, **kwargs)

    async def ok(
        self, method: str, path: str, account: Account | None = None, **kwargs: Any
    ) -> Any:
        response = await self.call(method, path, account, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return None if response.status_code == 204 else response.json()

    async def direct(self, a: Account, b: Account) -> str:
        body = await self.ok("POST", "/conversations/direct", a, json={"user_id": b.id})
        return str(body["id"])

    async def group(self, owner: Account, *members: Account, public: bool = False) -> str:
        body = await self.ok(
            "POST",
            "/conversations/groups",
            owner,
            json={
                "name": unique_name("g"),
                "member_ids": [m.id for m in members],
                "is_public": public,
            },
        )
        return str(body["id"])

    async def messages(self, account: Account, conversation_id: str, **params: Any) -> list[Frame]:
        body = await self.ok(
            "GET", f"/conversations/{conversation_id}/messages", account, params=params
        )
        return list(body["messages"])

    async def aclose(self) -> None:
        await self.http.aclose()


class Socket:
    """A client socket whose frames are collected in the background, for waiting on."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self._arrived = asyncio.Event()
        self._taken: set[int] = set()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None = None,
        *,
        origin: str | None = None,
        resume: dict[str, int] | None = None,
    ) -> Socket:
        """Connect and, given a token, authenticate (and resume, given cursors)."""
        headers = {"Origin": origin} if origin else None
        ws = await connect(url, additional_headers=headers, open_timeout=10, max_size=2**22)
        socket = cls(ws)
        if token is not None:
            await socket.send({"type": "auth", "token": token})
            await socket.next("ready")
            if resume is not None:
                await socket.send({"type": "resume", "cursors": resume})
                await socket.next("resumed")
        return socket

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self._arrived.set()
        self._arrived.set()

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def wait_for(
        self, predicate: Callable[[list[Frame]], bool], timeout: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.frames):
                if self._reader.done():
                    raise AssertionError(f"socket closed while waiting: {self.close_code}")
                self._arrived.clear()
                await self._arrived.wait()

    async def next(self, type_: str, timeout: float = 10.0, **match: Any) -> Frame:
        """The first frame of `type_` matching `match` that no earlier `next` returned."""
        found: list[int] = []

        def seen(frames: list[Frame]) -> bool:
            for index, frame in enumerate(frames):
                if index in self._taken or frame.get("type") != type_:
                    continue
                if all(frame.get(k) == v for k, v in match.items()):
                    found.append(index)
                    return True
            return False

        await self.wait_for(seen, timeout)
        self._taken.add(found[0])
        return self.frames[found[0]]

    def of_type(self, type_: str) -> list[Frame]:
        return [f for f in self.frames if f.get("type") == type_]

    def messages(self, conversation_id: str | None = None) -> list[Frame]:
        return [
            f["message"]
            for f in self.of_type("message")
            if conversation_id is None or f["message"]["conversation_id"] == conversation_id
        ]

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        async with asyncio.timeout(timeout):
            await self._reader
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader
