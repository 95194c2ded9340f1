"""/: the chat itself: the conversation list beside the open conversation (one at a time on a
phone)."""

from __future__ import annotations

import reflex as rx

from letschat_app.components.conversation import conversation_panel
from letschat_app.components.sidebar import sidebar
from letschat_app.state.chat import ChatState
from letschat_app.state.live import LiveState
from letschat_app.state.session import SessionState

ON_LOAD = [SessionState.require_session, ChatState.load_chats, LiveState.connect]


def _layout() -> rx.Component:
    chat_open = ChatState.active_id != ""
    return rx.flex(
        rx.box(
            sidebar(),
            width=rx.breakpoints(initial="100%", md="340px"),
            flex_shrink="0",
            height="100%",
            display=rx.cond(chat_open, rx.breakpoints(initial="none", md="block"), "block"),
            id="sidebar",
        ),
        rx.box(
            conversation_panel(),
            flex="1",
            min_width="0",
            height="100%",
            display=rx.cond(chat_open, "block", rx.breakpoints(initial="none", md="block")),
            id="conversation",
        ),
        height="100dvh",
        width="100%",
        overflow="hidden",
    )


def chat_page() -> rx.Component:
    return rx.fragment(
        rx.el.title(ChatState.page_title),
        rx.cond(
            ChatState.error != "",
            rx.callout(
                ChatState.error,
                icon="triangle_alert",
                color_scheme="red",
                position="fixed",
                top="8px",
                left="50%",
                transform="translateX(-50%)",
                z_index="10",
                on_click=ChatState.dismiss_error,
                cursor="pointer",
            ),
        ),
        rx.cond(
            SessionState.signed_in,
            _layout(),
            # The token disappeared (logged out in another tab): leave with an explanation.
            rx.center(rx.spinner(), height="100dvh", on_mount=SessionState.session_gone),
        ),
    )
