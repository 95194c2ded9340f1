"""The quick switcher: Ctrl+K (Cmd+K on a Mac) anywhere, type part of a name, Enter opens that
conversation, or starts one with that person. ↑/↓ pick among the matches (assets/letschat.js);
Escape closes it and puts the focus back where it was."""

from __future__ import annotations

import reflex as rx

from letschat_app import api_client
from letschat_app.components.presence import with_presence
from letschat_app.components.script_button import script_button
from letschat_app.model.switcher import choices
from letschat_app.state.chat import ChatState
from letschat_app.state.models import Person, SwitchItem, person


class SwitcherState(ChatState):
    switcher_open: bool = False
    # How many times it was opened, shown on the opener: letschat.js keeps the keys typed after
    # Ctrl+K until the switcher opened for that Ctrl+K is on the page.
    switcher_opened: int = 0
    switcher_query: str = ""
    switch_items: rx.Field[list[SwitchItem]] = rx.field(default_factory=list)
    switcher_error: str = ""

    @rx.event
    def open_switcher(self) -> None:
        self.switcher_open = True
        self.switcher_opened += 1
        self.switcher_query, self.switcher_error = "", ""
        self.switch_items = self._choices("", [])

    @rx.event
    def set_switcher_open(self, is_open: bool) -> None:
        self.switcher_open = is_open

    @rx.event
    async def find(self, query: str):
        """What was typed changed: conversations and known people match at once; anyone else
        whose username starts with it is asked of the auth service."""
        self.switcher_query = query
        found: list[Person] = []
        if query.strip():
            try:
                found = [person(u) for u in await self._call(api_client.search_users, query)]
            except api_client.ApiError as exc:
                self.switcher_error = exc.message
        if query == self.switcher_query:  # Not overtaken by a later keystroke.
            self.switch_items = self._choices(query, found)

    @rx.event
    async def choose(self, kind: str, item_id: str):
        self.switcher_open = False
        if kind == "conversation":
            return ChatState.open_to_type(item_id)
        try:
            conversation = await self._call(api_client.open_direct, item_id)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        self._upsert_chat(conversation)
        return ChatState.open_to_type(conversation.id)

    def _choices(self, query: str, found: list[Person]) -> list[SwitchItem]:
        model = self._chat_model()
        known = {user.id: person(user) for user in model.users.values() if user.id != self.user_id}
        for someone in found:
            known.setdefault(someone.id, someone)
        return choices(query, model.chats.values(), known.values())


def _item(item: SwitchItem) -> rx.Component:
    return rx.el.button(
        rx.hstack(
            with_presence(
                rx.avatar(fallback=item.label[:2], size="2", radius="full"), item.presence
            ),
            rx.vstack(
                rx.text(item.label, size="2", weight="medium"),
                rx.text(item.detail, size="1", color="var(--gray-11)"),
                spacing="0",
                align="start",
            ),
            rx.spacer(),
            rx.cond(
                item.unread > 0,
                rx.badge(item.unread, color_scheme="red", variant="solid", radius="full"),
            ),
            align="center",
            width="100%",
        ),
        type="button",
        role="option",
        id="switch-" + item.key.replace(":", "-"),
        class_name="switch-item",
        tab_index=-1,
        on_click=SwitcherState.choose(item.kind, item.id),
    )


def switcher() -> rx.Component:
    return rx.fragment(
        # letschat.js clicks this on Ctrl+K / Cmd+K.
        script_button(
            "open-switcher", SwitcherState.open_switcher, data_opened=SwitcherState.switcher_opened
        ),
        rx.dialog.root(
            rx.dialog.content(
                rx.dialog.title("Jump to", size="3"),
                rx.input(
                    id="switcher-input",
                    placeholder="Conversation or person",
                    value=SwitcherState.switcher_query,
                    on_change=SwitcherState.find.debounce(120),
                    auto_focus=True,
                    role="combobox",
                    aria_expanded="true",
                    aria_controls="switcher-list",
                    aria_autocomplete="list",
                    aria_label="Conversation or person",
                    auto_complete="off",
                ),
                rx.vstack(
                    rx.foreach(SwitcherState.switch_items, _item),
                    rx.cond(
                        SwitcherState.switch_items.length() == 0,
                        rx.text("Nothing matches.", size="2", color="var(--gray-11)"),
                    ),
                    id="switcher-list",
                    # What the matches are for: Enter waits until they are for what is typed.
                    data_query=SwitcherState.switcher_query,
                    role="listbox",
                    aria_label="Matches",
                    spacing="1",
                    margin_top="var(--space-3)",
                ),
                rx.text(
                    "↑↓ to choose, Enter to open, Esc to close",
                    size="1",
                    color="var(--gray-11)",
                    margin_top="var(--space-3)",
                ),
                max_width="480px",
                id="switcher",
                # The focus goes where the choice leads (the composer), or back where it was
                # (letschat.js), not to whatever had it when the dialog opened.
                on_close_auto_focus=rx.prevent_default,
            ),
            open=SwitcherState.switcher_open,
            on_open_change=SwitcherState.set_switcher_open,
        ),
    )
