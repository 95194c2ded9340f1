"""One live socket per browser tab, kept by a background event: it reconnects with backoff,
resumes from the tab's cursors and turns server frames into state changes, popups and
notifications."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import reflex as rx
from reflex_components_sonner.toast import ToastAction
from websockets.exceptions import WebSocketException

from letschat_app import api_client, metrics, tokens
from letschat_app.model.chat import ChatModel, Popup
from letschat_app.state.chat import OUTBOXES, TICK_WANTED, ChatState, added_notice_id, outbox
from letschat_app.state.models import ChatItem, popup_text
from letschat_app.state.session import SESSION_ENDED, notice_for
from letschat_protocol import (
    AckFrame,
    AuthFrame,
    ChangeFrame,
    ChangesLimitedFrame,
    ClientFrame,
    CloseCode,
    Conversation,
    ConversationFrame,
    ErrorCode,
    ErrorFrame,
    LeftFrame,
    LimitedFrame,
    MessageFrame,
    PresenceNoticeFrame,
    PresenceSettingFrame,
    ReadMarkerFrame,
    ResetFrame,
    ResumedFrame,
    ServerFrame,
    TypingNoticeFrame,
    User,
)

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

CLOSE_NOTICES: dict[int, str] = {
    CloseCode.TOKEN_EXPIRED: SESSION_ENDED[ErrorCode.TOKEN_EXPIRED],
    CloseCode.TOKEN_REVOKED: SESSION_ENDED[ErrorCode.TOKEN_REVOKED],
}
# Closes after which a refresh may help: the access token expired, was refused, or its session
# ended (then the refresh says how, for the login page).
RENEWABLE_CLOSES = frozenset(
    {CloseCode.UNAUTHORIZED, CloseCode.TOKEN_EXPIRED, CloseCode.TOKEN_REVOKED}
)
# A renewal the auth service could not answer is asked again this much later.
RENEW_RETRY_SECONDS = 5.0

# Tabs (Reflex client tokens) whose live socket is running in this process.
RUNNING: set[str] = set()


def _tab_open(client_token: str) -> bool:
    from letschat_app.letschat_app import app

    namespace = app.event_namespace
    return namespace is None or client_token in namespace.token_to_sid


def _session_key(state: LiveState) -> str:
    """Which sign-in the state holds: its session, which survives renewals."""
    place = tokens.place_of(state.refresh_token)
    return place.session_id if place is not None else state.token


def _locked(state: LiveState) -> LiveState:
    """The state behind a background task's proxy; only for use inside `async with state`."""
    return cast("LiveState", getattr(state, "__wrapped__", state))


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
            TICK_WANTED.discard(client_token)
            # Unacked sends live on in the state and go again after the next resume.
            OUTBOXES.pop(client_token, None)

    async def _stay_connected(self, client_token: str) -> AsyncIterator[Any]:
        delay = BACKOFF_FIRST
        gone_for = 0.0
        rejected_in_a_row = 0
        while True:
            async with self:
                state = _locked(self)
                try:
                    token = await state._fresh_token()
                except api_client.ApiError as exc:
                    ended = state._end_session(notice_for(exc))
                    token = ""
                else:
                    ended = None
            if ended is not None:
                yield ended
            if not token:
                return
            try:
                async with api_client.live_socket(token) as socket:
                    writer = asyncio.create_task(_write(socket, outbox(client_token)))
                    metrics.LIVE_SOCKETS.inc()
                    try:
                        async for event in self._listen(socket, client_token, token):
                            if event == "resumed":
                                delay = BACKOFF_FIRST
                                rejected_in_a_row = 0
                            elif event == "idle":
                                gone_for = (
                                    0.0 if _tab_open(client_token) else gone_for + IDLE_TICK_SECONDS
                                )
                                if gone_for >= TAB_GONE_SECONDS:
                                    return
                            else:
                                yield event
                    finally:
                        metrics.LIVE_SOCKETS.dec()
                        writer.cancel()
                        with contextlib.suppress(
                            asyncio.CancelledError, WebSocketException, OSError
                        ):
                            await writer
            except api_client.SocketRejected as rejected:
                rejected_in_a_row += 1
                async with self:
                    outcome = await _locked(self)._after_rejection(rejected, rejected_in_a_row)
                if outcome == "renewed":
                    continue  # A fresh token: reconnect (and resume) at once.
                if outcome == "retry":
                    rejected_in_a_row = 0
                else:
                    yield outcome
                    return
            except (OSError, WebSocketException, TimeoutError, ConnectionError):
                pass
            async with self:
                if not self.token:
                    return
                self.connection = "reconnecting"
            metrics.RECONNECTS.inc()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(delay * 2, BACKOFF_MAX)

    async def _after_rejection(self, rejected: api_client.SocketRejected, in_a_row: int) -> Any:
        """The message service refused this tab's token. "renewed": a refresh gave a new one;
        "retry": the auth service could not be asked, try later; else the way to the login page
        (the session is over, or a renewed token was refused too)."""
        if rejected.code not in RENEWABLE_CLOSES or not self.refresh_token or in_a_row > 1:
            notice = CLOSE_NOTICES.get(rejected.code, SESSION_ENDED[ErrorCode.UNAUTHORIZED])
            return self._end_session(notice)
        try:
            await self._fresh_token(force=True)
        except api_client.ApiError as exc:
            return self._end_session(notice_for(exc)) if exc.ends_session else "retry"
        return "renewed"

    async def _listen(
        self, socket: api_client.LiveSocket, client_token: str, token: str
    ) -> AsyncIterator[Any]:
        """Resume, then apply frames as they come. Yields "resumed", "idle" or UI events.

        The access token is renewed before it expires and handed to the open socket (an `auth`
        frame), so the socket outlives every token it is given."""
        # Resuming before the conversation list arrives would replay history it already counts.
        for _ in range(int(CHATS_WAIT_SECONDS / 0.1)):
            async with self:
                if self._chats_loaded:
                    break
            await asyncio.sleep(0.1)
        async with self:
            resume = self._chat_model().resume_frame()
            signed_in = _session_key(_locked(self))
        await socket.send(resume)
        renew_at = tokens.renew_at(token)
        async for batch in socket.frames(IDLE_TICK_SECONDS):
            metrics.count_frames([frame.type for frame in batch])
            renew = time.time() >= renew_at
            if not batch and not renew and client_token not in TICK_WANTED:
                yield "idle"  # Nothing can have changed: no state round trip.
                continue
            ended, reauth = None, False
            async with self:
                # The state itself, while locked: every attribute through the background
                # task's proxy costs a check and a rebinding, on the path of every message.
                state = _locked(self)
                if renew:
                    try:
                        await state._fresh_token()
                    except api_client.ApiError as exc:
                        ended = state._end_session(notice_for(exc))
                # Not if logged out (perhaps in another tab), or someone else logged in.
                still = ended is None and bool(state.token) and _session_key(state) == signed_in
                if still and state.token != token:  # Renewed: by another event or tab...
                    state._restore_newest()  # ...or older: the page restored what it stored.
                    if state.token != token:
                        token, reauth = state.token, True
                        renew_at = tokens.renew_at(token)
                elif still and renew:  # The auth service is unreachable: ask again in a while.
                    renew_at = time.time() + RENEW_RETRY_SECONDS
                if still:
                    model = state._chat_model()
                    now = time.monotonic()
                    events, resumed, unknown = state._apply(model, batch, now)
                    if resumed:
                        state.connection = "connected"
                        model.resumed(now)
                    elif not batch and state.connection == "connected":
                        model.expire(now, SEND_TIMEOUT_SECONDS)
                    model.tick(now)
                    events += [state._popup(model, p) for p in model.take_due_popups()]
                    events = [*state._publish(client_token), *(e for e in events if e is not None)]
                    stale, model.stale = sorted(model.stale), set()
                else:
                    events, resumed, unknown, stale = [], False, False, []
                    signed_in = None
            if signed_in is None:
                if ended is not None:
                    yield ended
                return
            if reauth:
                await socket.send(AuthFrame(token=token))
            if unknown:
                yield ChatState.load_chats
            for conversation_id in stale:
                yield ChatState.refresh_chat(conversation_id)
            for event in events:
                yield event
            if resumed:
                yield "resumed"
            elif not batch:
                yield "idle"

    def _apply(
        self, model: ChatModel, batch: list[ServerFrame], now: float
    ) -> tuple[list[Any], bool, bool]:
        """Apply a batch of frames; return popups to show, whether `resumed` came, and whether
        the conversation list must be fetched again (a message arrived for a conversation the
        sidebar does not know yet, or a conversation started over in a new history)."""
        news: dict[str, Popup] = {}
        notices: list[Any] = []
        resumed = unknown = False
        for frame in batch:
            match frame:
                case MessageFrame(message=message) | AckFrame(message=message):
                    unknown = unknown or message.conversation_id not in model.chats
                    popup = model.receive(message, now, ack=isinstance(frame, AckFrame))
                    if popup is not None:
                        news[message.conversation_id] = popup
                case ConversationFrame(conversation=conversation, added_by=adder):
                    model.upsert(conversation)
                    if adder is not None and conversation.kind == "group":
                        notices.append(_added_notice(conversation, adder))
                case ReadMarkerFrame(conversation_id=conversation_id, seq=seq):
                    model.read_elsewhere(conversation_id, seq)
                case LeftFrame(conversation_id=conversation_id):
                    model.left(conversation_id)
                    notices.append(rx.toast.dismiss(added_notice_id(conversation_id)))
                case ChangeFrame(change=change, message=message):
                    model.change(change, message)
                case TypingNoticeFrame():
                    model.typing_notice(frame, now)
                case PresenceNoticeFrame(users=entries):
                    model.presence_notice(entries)
                case PresenceSettingFrame(appear_offline=appear_offline):
                    self.appear_offline = appear_offline
                case (
                    LimitedFrame(conversation_id=conversation_id)
                    | ChangesLimitedFrame(conversation_id=conversation_id)
                ):
                    model.limited(conversation_id)
                case ResetFrame(conversation_id=conversation_id, epoch=epoch):
                    model.reset(conversation_id, epoch)
                    unknown = True  # Its unread count and marker count in the new history.
                case ErrorFrame(client_msg_id=str(client_msg_id), message=text):
                    if model.send_failed(client_msg_id):
                        self.error = text
                case ErrorFrame(message_id=str(), message=text):
                    self.error = text  # An edit, a deletion or a reaction that did not go.
                case ResumedFrame():
                    resumed = True
                case _:  # ready, authed, pong, and errors about anything but a send.
                    pass
        # A popup whose conversation was read later in the same batch is not news any more.
        popups = [p for cid, p in news.items() if model.chats.get(cid, ChatItem()).unread]
        return [*notices, *(self._popup(model, p) for p in popups)], resumed, unknown

    def _popup(self, model: ChatModel, popup: Popup) -> Any:
        """The toast and, if opted in, the browser notification for `popup` (None: nothing
        to show now)."""
        message = popup.message
        chat = model.chats.get(message.conversation_id, ChatItem())
        # One toast per conversation, kept up to date (see ChatModel); a notification per message.
        title, body = popup_text(message, popup.count, chat)
        notify = None
        if self.notify == "on":
            alone, text = popup_text(message, 1, chat)
            args = ", ".join(json.dumps(arg) for arg in (alone, text, message.id))
            notify = rx.call_script(f"window.letschat && window.letschat.notify({args})")
        if not popup.toast:
            return notify
        toast = rx.toast.info(
            title,
            description=body,
            id=popup.toast_id,
            duration=6000,
            close_button=True,
            action=ToastAction(label="Open", on_click=ChatState.open_chat(message.conversation_id)),
        )
        return toast if notify is None else [toast, notify]


def _added_notice(conversation: Conversation, adder: User) -> Any:
    """ "Ada added you to #design", with Leave at hand: nobody stays in a group they were put
    in without knowing it. It stays until dismissed, and goes when the group is left."""
    return rx.toast.info(
        f"{adder.display_name or adder.username} added you to #{conversation.name}",
        description="Leave if it is not for you.",
        id=added_notice_id(conversation.id),
        duration=60_000,
        close_button=True,
        action=ToastAction(label="Leave", on_click=ChatState.leave_group(conversation.id)),
        cancel=ToastAction(label="Open", on_click=ChatState.open_chat(conversation.id)),
    )


async def _write(socket: api_client.LiveSocket, queue: asyncio.Queue[ClientFrame]) -> None:
    while True:
        frame = await queue.get()
        try:
            await socket.send(frame)
        except Exception:
            # Put it back for the next connection; sends reuse their client_msg_id anyway.
            if not queue.full():
                queue.put_nowait(frame)
            raise
