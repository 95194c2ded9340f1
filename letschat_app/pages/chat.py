"""/: the chat itself: the conversation list beside the open conversation (one at a time on a
phone)."""

from __future__ import annotations

import reflex as rx

from letschat_app.components.conversation import conversation_panel
from letschat_app.components.notice import error_notice
from letschat_app.components.script_button import script_button
from letschat_app.components.search import search_dialog
from letschat_app.components.sidebar import sidebar
from letschat_app.components.switcher import switcher
from letschat_app.state.chat import ChatState
from letschat_app.state.live import LiveState
from letschat_app.state.session import SessionState

ON_LOAD = [
    SessionState.require_session,
    ChatState.load_chats,
    ChatState.load_appear_offline,
    LiveState.connect,
]


def _layout() -> rx.Component:
    # Which pane shows on a narrow screen is decided in assets/letschat.css by `chat-open`.
    return rx.flex(
        rx.el.nav(
            sidebar(),
            id="sidebar",
            aria_label="Conversations",
            flex_shrink="0",
            height="100%",
        ),
        rx.el.main(conversation_panel(), id="conversation", flex="1", min_width="0", height="100%"),
        switcher(),
        search_dialog(),
        class_name=rx.cond(ChatState.active_id != "", "layout chat-open", "layout"),
        height="100dvh",
        width="100%",
        overflow="hidden",
    )


def chat_page() -> rx.Component:
    return rx.fragment(
        # letschat.js keeps document.title equal to this (React won't replace the page's title).
        rx.el.meta(name="letschat-title", content=ChatState.page_title),
        # letschat.js clicks these when the tab starts or stops being seen (visible, focused,
        # scrolled to the newest message): only then does a message count as read.
        script_button("seen-on", ChatState.set_seen(True)),
        script_button("seen-off", ChatState.set_seen(False)),
        # ...and these when the tab becomes away (hidden, or unused for 5 minutes) or is back.
        script_button("away-on", ChatState.set_away(True)),
        script_button("away-off", ChatState.set_away(False)),
        error_notice(
            ChatState.error,
            position="fixed",
            top="8px",
            left="50%",
            transform="translateX(-50%)",
            z_index="10",
            on_click=ChatState.dismiss_error,
            cursor="pointer",
        ),
        rx.cond(
            SessionState.signed_in,
            _layout(),
            rx.cond(
                rx.State.is_hydrated,
                # The token disappeared (logged out in another tab): leave, saying why.
                rx.center(rx.spinner(), height="100dvh", on_mount=SessionState.session_gone),
                rx.center(rx.spinner(), height="100dvh"),
            ),
        ),
    )
