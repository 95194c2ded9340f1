"""One live socket per browser tab, kept by a background event: it reconnects with backoff,
resumes from the tab's cursors and turns server frames into state changes, popups and
notifications."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx
from reflex_components_sonner.toast import ToastAction
from websockets.exceptions import WebSocketException

from backend_services.core.schemas import Message
from letschat_app import api_client
from letschat_app.state.chat import OUTBOXES, ChatState, outbox
from letschat_app.state.session import SESSION_ENDED

# A send with no ack after this long is shown as failed, with a retry button.
SEND_TIMEOUT_SECONDS = float(os.environ.get("LETSCHAT_SEND_TIMEOUT_SECONDS", "10"))
# Reconnect schedule: 1 s doubling to 30 s, with jitter so tabs don't reconnect in lockstep.
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# How often an idle connection checks that its tab is still open and its sends are not stuck.
IDLE_TICK_SECONDS = 1.0
# A tab whose browser side has been gone this long stops its live socket.
TAB_GONE_SECONDS = 30.0
# How long a new socket waits for the conversation list before resuming without it.
CHATS_WAIT_SECONDS = 10.0

CLOSE_NOTICES = {4502: SESSION_ENDED["token_expired"], 4503: SESSION_ENDED["token_revoked"]}

# Tabs (Reflex client tokens) whose live socket is running in this process.
RUNNING: set[str] = set()


def _tab_open(client_token: str) -> bool:
    from letschat_app.letschat_app import app

    namespace = app.event_namespace
    return namespace is None or client_token in namespace.token_to_sid


class LiveState(ChatState):
    @rx.event(background=True)
    async def connect(self):
        client_token = self.router.session.client_token
        if client_token in RUNNING:
            return
        RUNNING.add(client_token)
        try:
            async for event in self._stay_connected(client_token):
                yield event
        finally:
            RUNNING.discard(client_token)
            # Unacked sends live on in the state and go again after the next resume.
            OUTBOXES.pop(client_token, None)

    async def _stay_connected(self, client_token: str) -> AsyncIterator[Any]:
        delay = BACKOFF_FIRST
        gone_for = 0.0
        while True:
            async with self:
                token = self.token
            if not token:
                return
            try:
                async with api_client.live_socket(token) as socket:
                    writer = asyncio.create_task(_write(socket, outbox(client_token)))
                    try:
                        async for event in self._listen(socket, client_token, token):
                            if event == "resumed":
                                delay = BACKOFF_FIRST
                            elif event == "idle":
                                gone_for = (
                                    0.0 if _tab_open(client_token) else gone_for + IDLE_TICK_SECONDS
                                )
                                if gone_for >= TAB_GONE_SECONDS:
                                    return
                            else:
                                yield event
                    finally:
                        writer.cancel()
                        with contextlib.suppress(
                            asyncio.CancelledError, WebSocketException, OSError
                        ):
                            await writer
            except api_client.SocketRejected as rejected:
                async with self:
                    notice = CLOSE_NOTICES.get(rejected.code, SESSION_ENDED["unauthorized"])
                    redirect = self._end_session(notice)
                yield redirect
                return
            except (OSError, WebSocketException, TimeoutError, ConnectionError):
                pass
            async with self:
                if not self.token:
                    return
                self.connection = "reconnecting"
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(
        self, socket: api_client.LiveSocket, client_token: str, token: str
    ) -> AsyncIterator[Any]:
        """Resume, then apply frames as they come. Yields "resumed", "idle" or UI events."""
        # Resuming before the conversation list arrives would replay history it already counts.
        for _ in range(int(CHATS_WAIT_SECONDS / 0.1)):
            async with self:
                if self._chats_loaded:
                    break
            await asyncio.sleep(0.1)
        async with self:
            cursors = {chat.id: chat.last_seq for chat in self.chats}
        await socket.send({"type": "resume", "cursors": cursors})
        async for batch in socket.frames(IDLE_TICK_SECONDS):
            async with self:
                if self.token != token:
                    return  # Logged out (perhaps in another tab).
                if not batch:
                    self.expire_pending(SEND_TIMEOUT_SECONDS)
                events, resumed, unknown = self._apply(batch)
                if resumed:
                    self.connection = "connected"
                    for frame in self.pending_frames():
                        self._enqueue(frame)
            if unknown:
                yield ChatState.load_chats
            for event in events:
                yield event
            if resumed:
                yield "resumed"
            elif not batch:
                yield "idle"

    def _apply(self, batch: list[dict[str, Any]]) -> tuple[list[Any], bool, bool]:
        """Apply a batch of frames; return popups to show, whether `resumed` came, and whether
        a message arrived for a conversation the sidebar does not know yet."""
        news: dict[str, Message] = {}
        counts: dict[str, int] = {}
        resumed = unknown = False
        known = {chat.id for chat in self.chats}
        for frame in batch:
            kind = frame.get("type")
            if kind in {"message", "ack"}:
                message = api_client.parse_message(frame["message"])
                unknown = unknown or message.conversation_id not in known
                if self.apply_message(message):
                    news[message.conversation_id] = message
                    counts[message.conversation_id] = counts.get(message.conversation_id, 0) + 1
            elif kind == "conversation":
                self.upsert_chat(api_client.parse_conversation(frame["conversation"]))
                known.add(frame["conversation"]["id"])
            elif kind == "read":
                self.apply_read(frame["conversation_id"], int(frame["seq"]))
            elif kind == "left":
                self.apply_left(frame["conversation_id"])
            elif kind == "error" and frame.get("client_msg_id"):
                self.apply_send_failed(frame["client_msg_id"], str(frame.get("message", "")))
            elif kind == "resumed":
                resumed = True
        return [self._popup(m, counts[cid]) for cid, m in news.items()], resumed, unknown

    def _popup(self, message: Message, count: int) -> Any:
        chat = self.chat_by_id(message.conversation_id)
        where = f" in {chat.name}" if chat.kind == "group" else ""
        title = f"{message.sender_name}{where}"
        more = f" (+{count - 1} more)" if count > 1 else ""
        body = (message.body[:140] + "…" if len(message.body) > 140 else message.body) + more
        toast = rx.toast.info(
            title,
            description=body,
            duration=6000,
            close_button=True,
            action=ToastAction(label="Open", on_click=ChatState.open_chat(message.conversation_id)),
        )
        if self.notify != "on":
            return toast
        script = (
            f"window.letschat && window.letschat.notify({json.dumps(title)}, {json.dumps(body)})"
        )
        return [toast, rx.call_script(script)]


async def _write(socket: api_client.LiveSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        frame = await queue.get()
        try:
            await socket.send(frame)
        except Exception:
            # Put it back for the next connection; sends reuse their client_msg_id anyway.
            if not queue.full():
                queue.put_nowait(frame)
            raise
