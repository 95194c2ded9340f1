"""The only module that talks to backend_services: REST over httpx, the live socket over websockets.

What goes over either is a `letschat_protocol` model: the app imports nothing of the services.
Answers are read with `strict=False` (JSON carries datetimes as strings), and fields or frame
types this release does not know are dropped: during a rolling deploy the service may be a
release ahead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from letschat_protocol import (
    AuthFrame,
    ClientFrame,
    Conversation,
    GroupSummary,
    Message,
    MessagePage,
    Presence,
    PresenceSetting,
    ReadyFrame,
    SearchPage,
    ServerFrame,
    SessionInfo,
    TokenResponse,
    User,
    must_not_reconnect,
    parse_server_frame,
)

AUTH_URL = os.environ.get("LETSCHAT_AUTH_URL", "http://127.0.0.1:8001").rstrip("/")
MESSAGE_URL = os.environ.get("LETSCHAT_MESSAGE_URL", "http://127.0.0.1:8002").rstrip("/")
WS_URL = os.environ.get("LETSCHAT_WS_URL", MESSAGE_URL.replace("http", "ws", 1) + "/ws")
# Generous for bcrypt on a busy box, short enough that a dead service is reported quickly.
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
BATCH_LIMIT = 500
# The conversation list comes in pages of this many (the service's most), and no user can be
# in more groups than the service allows: this many pages is everything, however many DMs.
CONVERSATIONS_PAGE = 200
MAX_CONVERSATION_PAGES = 50
REFRESH_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# ApiError codes of the app's own, beside the services' (letschat_protocol.ErrorCode).
UNREACHABLE = "unreachable"
HTTP_ERROR = "http_error"

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A `{code, message}` answer from a service, or a network failure (code `unreachable`)."""

    def __init__(self, code: str, message: str, status: int = 0, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def ends_session(self) -> bool:
        return self.status == 401


class SocketRejected(Exception):
    """The live socket was closed with a 4500-4999 code: do not reconnect with this token."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=TIMEOUT)
    return _client


async def _request(
    method: str,
    url: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    response = await _response(method, url, token, headers, **kwargs)
    return None if response.status_code == 204 else response.json()


async def _response(
    method: str,
    url: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """The successful response to a request; ApiError for any other."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = await _http().request(method, url, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiError(UNREACHABLE, "Can't reach Let's Chat right now. Try again.") from exc
    if response.is_success:
        return response
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = HTTP_ERROR, f"Unexpected answer ({response.status_code})."
    retry_after = response.headers.get("Retry-After")
    raise ApiError(code, message, response.status_code, int(retry_after) if retry_after else None)


# --- auth service ---------------------------------------------------------------------------


def _client_headers(client_ip: str, user_agent: str) -> dict[str, str]:
    """Who the browser is, for the auth service's throttle and sessions list. The address is
    believed only because the auth service trusts this backend (LETSCHAT_TRUSTED_PROXIES)."""
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    if user_agent:
        headers["User-Agent"] = user_agent
    return headers


def _token_response(raw: Any) -> TokenResponse:
    return TokenResponse.model_validate(raw, strict=False)


async def register(
    username: str,
    password: str,
    display_name: str | None,
    client_ip: str = "",
    user_agent: str = "",
) -> TokenResponse:
    body: dict[str, Any] = {"username": username, "password": password}
    if display_name:
        body["display_name"] = display_name
    headers = _client_headers(client_ip, user_agent)
    return _token_response(
        await _request("POST", f"{AUTH_URL}/auth/register", json=body, headers=headers)
    )


async def login(
    username: str, password: str, client_ip: str = "", user_agent: str = ""
) -> TokenResponse:
    """Log in on behalf of the browser at `client_ip`: the auth service throttles failures per
    username and per client address, and every browser's requests reach it from this process."""
    body = {"username": username, "password": password}
    headers = _client_headers(client_ip, user_agent)
    return _token_response(
        await _request("POST", f"{AUTH_URL}/auth/login", json=body, headers=headers)
    )


async def refresh(refresh_token: str, client_ip: str = "") -> TokenResponse:
    """The next token pair of a session (the one given stops working)."""
    body = {"refresh_token": refresh_token}
    headers = _client_headers(client_ip, "")
    # Short: a tab's state is locked meanwhile, and a slow answer is better asked again.
    return _token_response(
        await _request(
            "POST", f"{AUTH_URL}/auth/refresh", json=body, headers=headers, timeout=REFRESH_TIMEOUT
        )
    )


async def sessions(token: str) -> list[SessionInfo]:
    found = await _request("GET", f"{AUTH_URL}/auth/sessions", token)
    return [SessionInfo.model_validate(s, strict=False) for s in found]


async def end_session(token: str, session_id: str) -> None:
    await _request("DELETE", f"{AUTH_URL}/auth/sessions/{session_id}", token)


async def end_other_sessions(token: str) -> int:
    return int((await _request("POST", f"{AUTH_URL}/auth/sessions/end-others", token))["ended"])


async def change_password(token: str, current: str, new: str) -> int:
    body = {"current_password": current, "new_password": new}
    return int((await _request("POST", f"{AUTH_URL}/auth/password", token, json=body))["ended"])


async def me(token: str) -> User:
    return User.model_validate(await _request("GET", f"{AUTH_URL}/auth/me", token), strict=False)


async def logout(token: str) -> None:
    await _request("POST", f"{AUTH_URL}/auth/logout", token)


async def search_users(token: str, prefix: str) -> list[User]:
    found = await _request("GET", f"{AUTH_URL}/users", token, params={"q": prefix, "limit": 10})
    return [User.model_validate(user, strict=False) for user in found]


# --- message service ------------------------------------------------------------------------


def parse_conversation(raw: Any) -> Conversation:
    return Conversation.model_validate(raw, strict=False)


async def conversations(token: str) -> list[Conversation]:
    """All the user's conversations, newest activity first, fetched a page at a time. One that
    moved to the front between pages (a new message) is kept where it was seen first."""
    found: dict[str, Conversation] = {}
    params: dict[str, str | int] = {"limit": CONVERSATIONS_PAGE}
    for _ in range(MAX_CONVERSATION_PAGES):
        response = await _response("GET", f"{MESSAGE_URL}/conversations", token, params=params)
        for raw in response.json():
            conversation = parse_conversation(raw)
            found.setdefault(conversation.id, conversation)
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
        params = {"limit": CONVERSATIONS_PAGE, "cursor": cursor}
    return list(found.values())


async def open_direct(token: str, user_id: str) -> Conversation:
    body = {"user_id": user_id}
    return parse_conversation(
        await _request("POST", f"{MESSAGE_URL}/conversations/direct", token, json=body)
    )


async def create_group(
    token: str, name: str, member_ids: list[str], is_public: bool
) -> Conversation:
    body = {"name": name, "member_ids": member_ids, "is_public": is_public}
    return parse_conversation(
        await _request("POST", f"{MESSAGE_URL}/conversations/groups", token, json=body)
    )


async def public_groups(token: str, prefix: str) -> list[GroupSummary]:
    found = await _request("GET", f"{MESSAGE_URL}/groups", token, params={"q": prefix})
    return [GroupSummary.model_validate(group, strict=False) for group in found]


async def join(token: str, conversation_id: str) -> Conversation:
    return parse_conversation(
        await _request("POST", f"{MESSAGE_URL}/conversations/{conversation_id}/join", token)
    )


async def leave(token: str, conversation_id: str) -> None:
    await _request("POST", f"{MESSAGE_URL}/conversations/{conversation_id}/leave", token)


async def add_member(token: str, conversation_id: str, user_id: str) -> Conversation:
    url = f"{MESSAGE_URL}/conversations/{conversation_id}/members"
    return parse_conversation(await _request("POST", url, token, json={"user_id": user_id}))


async def older_messages(
    token: str, conversation_id: str, before_seq: int | None, limit: int = 50
) -> tuple[list[Message], bool]:
    params: dict[str, int] = {"limit": limit}
    if before_seq is not None:
        params["before_seq"] = before_seq
    url = f"{MESSAGE_URL}/conversations/{conversation_id}/messages"
    raw = await _request("GET", url, token, params=params)
    page = MessagePage.model_validate(raw, strict=False)
    return list(page.messages), page.has_more


def parse_message(raw: Any) -> Message:
    return Message.model_validate(raw, strict=False)


# --- the live socket ------------------------------------------------------------------------


@dataclass
class LiveSocket:
    """One authenticated `/ws` connection."""

    ws: ClientConnection

    async def send(self, frame: ClientFrame) -> None:
        await self.ws.send(frame.model_dump_json())

    async def frames(self, idle_timeout: float) -> AsyncIterator[list[ServerFrame]]:
        """Batches of frames: whatever has arrived, or an empty batch after `idle_timeout`.
        Frames of a type this release does not know are left out."""
        while True:
            batch: list[ServerFrame] = []
            try:
                async with asyncio.timeout(idle_timeout):
                    _append(batch, await self.ws.recv())
            except TimeoutError:
                yield batch
                continue
            except ConnectionClosed as exc:
                _raise_if_rejected(exc)
                raise
            # Take what is already buffered too, so a burst (a resume) is one state update, but
            # never wait for more: a lone frame goes to the browser at once. recv() returns a
            # buffered message without suspending, and cancelling it loses nothing.
            while len(batch) < BATCH_LIMIT:
                try:
                    async with asyncio.timeout(0):
                        _append(batch, await self.ws.recv())
                except (TimeoutError, ConnectionClosed):
                    break
            yield batch


def _append(batch: list[ServerFrame], text: str | bytes) -> None:
    try:
        frame = parse_server_frame(text)
    except ValidationError:
        # A frame this release cannot read is the service's bug or a change it should not have
        # made; one is skipped rather than stopping the tab's live updates for good.
        logger.warning("skipping a service frame that does not parse", exc_info=True)
        return
    if frame is not None:
        batch.append(frame)


def _raise_if_rejected(exc: ConnectionClosed) -> None:
    received = exc.rcvd
    if received is not None and must_not_reconnect(received.code):
        raise SocketRejected(received.code, received.reason) from exc


@asynccontextmanager
async def live_socket(token: str) -> AsyncIterator[LiveSocket]:
    """Connect and authenticate; raise `SocketRejected` if the token is refused."""
    async with connect(WS_URL, open_timeout=10, max_size=2**22, ping_interval=20) as ws:
        await ws.send(AuthFrame(token=token).model_dump_json())
        try:
            ready = parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as exc:
            _raise_if_rejected(exc)
            raise
        except ValidationError as exc:
            raise ConnectionError("the first frame does not parse") from exc
        if not isinstance(ready, ReadyFrame):
            kind = ready.type if ready is not None else "unknown"
            raise ConnectionError(f"unexpected first frame: {kind}")
        yield LiveSocket(ws)


async def conversation(token: str, conversation_id: str) -> Conversation:
    return parse_conversation(
        await _request("GET", f"{MESSAGE_URL}/conversations/{conversation_id}", token)
    )


async def conversation_presence(token: str, conversation_id: str) -> list[Presence]:
    """Whether each member of a conversation is there."""
    url = f"{MESSAGE_URL}/conversations/{conversation_id}/presence"
    return [Presence.model_validate(raw, strict=False) for raw in await _request("GET", url, token)]


async def presence_setting(token: str) -> PresenceSetting:
    raw = await _request("GET", f"{MESSAGE_URL}/presence/me", token)
    return PresenceSetting(appear_offline=bool(raw["appear_offline"]))


async def set_presence_setting(token: str, appear_offline: bool) -> PresenceSetting:
    body = PresenceSetting(appear_offline=appear_offline).model_dump()
    raw = await _request("PUT", f"{MESSAGE_URL}/presence/me", token, json=body)
    return PresenceSetting(appear_offline=bool(raw["appear_offline"]))


async def search(
    token: str, query: str, conversation_id: str | None = None, cursor: str | None = None
) -> SearchPage:
    """A page of the user's messages matching `query`, newest first."""
    params = {"q": query, "limit": 20}
    if conversation_id:
        params["conversation_id"] = conversation_id
    if cursor:
        params["cursor"] = cursor
    raw = await _request("GET", f"{MESSAGE_URL}/search", token, params=params)
    return SearchPage.model_validate(raw, strict=False)


async def update_group(
    token: str, conversation_id: str, name: str, description: str
) -> Conversation:
    body = {"name": name, "description": description}
    raw = await _request(
        "PATCH", f"{MESSAGE_URL}/conversations/{conversation_id}", token, json=body
    )
    return parse_conversation(raw)


async def remove_member(token: str, conversation_id: str, user_id: str) -> None:
    url = f"{MESSAGE_URL}/conversations/{conversation_id}/members/{user_id}"
    await _request("DELETE", url, token)
