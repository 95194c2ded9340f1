"""The conversation list: who you are, how connected you are, and every chat with its badge."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors

from letschat_app.components.account import AccountState, account_dialog
from letschat_app.components.dialogs import browse_groups_dialog, new_chat_dialog, new_group_dialog
from letschat_app.components.presence import with_presence
from letschat_app.components.search import search_button
from letschat_app.model.sidebar import CHUNK, CHUNKS, chunk_start
from letschat_app.state.chat import ChatState, chats_name
from letschat_app.state.models import ChatItem


def connection_badge() -> rx.Component | rx.Var[Any]:
    """Both hops: this page to the app's backend (known only in the browser), then the
    backend to the message service (state)."""
    return rx.cond(
        has_connection_errors,
        rx.badge("Offline", color_scheme="orange", id="connection", data_hop="page"),
        rx.match(
            ChatState.connection,
            (
                "connected",
                # High contrast: the soft green's text is 4.2:1 on its background, under AA.
                rx.badge(
                    "Connected",
                    color_scheme="green",
                    variant="soft",
                    high_contrast=True,
                    id="connection",
                ),
            ),
            (
                "reconnecting",
                rx.badge(
                    "Reconnecting…", color_scheme="orange", id="connection", data_hop="service"
                ),
            ),
            rx.badge("Connecting…", color_scheme="gray", id="connection"),
        ),
    )


def _chat_row(chat: ChatItem) -> rx.Component:
    selected = chat.id == ChatState.active_id
    return rx.box(
        rx.hstack(
            with_presence(
                rx.avatar(fallback=chat.name[:2], size="3", radius="full"), chat.presence
            ),
            rx.vstack(
                rx.hstack(
                    rx.text(chat.name, weight="bold", size="2", truncate=True),
                    rx.cond(chat.muted, rx.icon("bell_off", size=14, color="var(--gray-9)")),
                    align="center",
                    spacing="1",
                ),
                rx.text(chat.preview, size="1", color_scheme="gray", truncate=True, width="100%"),
                spacing="0",
                min_width="0",
                flex="1",
            ),
            rx.cond(
                (chat.mentioned_seq > chat.last_read_seq) & (chat.unread > 0),
                rx.badge(
                    "@",
                    color_scheme="red",
                    variant="soft",
                    radius="full",
                    class_name="mention-badge",
                    title="You were mentioned",
                    aria_label="You were mentioned",
                ),
            ),
            rx.cond(
                chat.unread > 0,
                rx.badge(
                    rx.cond(chat.unread > 99, "99+", chat.unread),
                    color_scheme=rx.cond(chat.muted, "gray", "red"),
                    variant="solid",
                    radius="full",
                    class_name="unread-badge",
                ),
            ),
            align="center",
            width="100%",
        ),
        on_click=ChatState.open_chat(chat.id),
        # A button to the keyboard: the open one (else the first, letschat.js) is the one Tab
        # stops at; ↑/↓ move between rows, Enter or Space opens one.
        role="button",
        tab_index=rx.cond(selected, 0, -1),
        aria_current=rx.cond(selected, "true", "false"),
        padding="var(--space-2)",
        border_radius="var(--radius-3)",
        background=rx.cond(selected, "var(--accent-4)", "transparent"),
        _hover={"background": rx.cond(selected, "var(--accent-4)", "var(--gray-3)")},
        cursor="pointer",
        width="100%",
        class_name="chat-row",
        data_chat_name=chat.name,
        data_conversation=chat.id,
    )


def _place(index: rx.Var[int]) -> rx.Component | rx.Var[Any]:
    """The conversation at sidebar place `index`, looked up in its chunk (model/sidebar.py)."""
    place = index.to(int)
    last = CHUNKS - 1
    chunk = rx.cond(place >= chunk_start(last), last, place // CHUNK)
    cases = [
        (n, _chat_row(getattr(ChatState, chats_name(n))[place - chunk_start(n)]))
        for n in range(CHUNKS)
    ]
    return rx.match(chunk, *cases, rx.fragment())


def _menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(rx.icon("ellipsis_vertical"), variant="ghost", aria_label="Menu")
        ),
        rx.menu.content(
            rx.menu.item(
                rx.cond(
                    ChatState.notify == "on", "Turn off notifications", "Turn on notifications"
                ),
                on_click=ChatState.set_notify(ChatState.notify != "on"),
            ),
            rx.menu.item(
                rx.cond(ChatState.appear_offline, "Show me as online", "Appear offline"),
                on_click=ChatState.toggle_appear_offline,
                id="appear-offline",
            ),
            rx.menu.item("Sessions and password", on_click=AccountState.open_account),
            rx.menu.separator(),
            rx.menu.item("Log out", on_click=ChatState.logout, color="red"),
        ),
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.heading("Let's Chat", size="4"),
                rx.text(ChatState.display_name, size="1", color_scheme="gray", id="me"),
                spacing="0",
            ),
            rx.spacer(),
            connection_badge(),
            search_button(),
            rx.button("Log out", on_click=ChatState.logout, variant="soft", size="1"),
            _menu(),
            account_dialog(),
            align="center",
            width="100%",
        ),
        rx.hstack(
            new_chat_dialog(), new_group_dialog(), browse_groups_dialog(), spacing="2", wrap="wrap"
        ),
        rx.cond(
            ChatState.chat_order.length() > 0,
            rx.scroll_area(
                rx.vstack(rx.foreach(ChatState.chat_order, _place), spacing="1", width="100%"),
                type="auto",
                flex="1",
            ),
            rx.center(
                rx.text(
                    "No conversations yet. Use “New chat” to message someone, or “New group”.",
                    color_scheme="gray",
                    size="2",
                    align="center",
                ),
                flex="1",
                padding="var(--space-4)",
            ),
        ),
        height="100%",
        padding="var(--space-3)",
        spacing="3",
        border_right="1px solid var(--gray-5)",
        background="var(--gray-1)",
    )
