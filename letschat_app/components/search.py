"""Message search: "/" (outside a text box) or the search button, type, Enter. Each result opens
its conversation at the message. From a conversation's header it searches that conversation.

The service does the finding (`GET /search`: words, "a phrase", from:someone, in:#group);
results come a page at a time, "More results" asks for the next.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from letschat_app import api_client
from letschat_app.model.timeline import zone
from letschat_app.state.chat import ChatState
from letschat_app.state.models import ChatItem, SearchResult, plain
from letschat_protocol import Message

EXCERPT_CHARS = 160


class SearchState(ChatState):
    search_open: bool = False
    # How many times it was opened, shown on its buttons: letschat.js keeps the keys typed
    # after "/" until the dialog opened for that "/" is on the page.
    search_opened: int = 0
    search_query: str = ""
    # A conversation to search in ("" for all), and its name for the dialog's title.
    search_scope: str = ""
    search_scope_name: str = ""
    search_results: rx.Field[list[SearchResult]] = rx.field(default_factory=list)
    search_cursor: str = ""
    searching: bool = False
    searched: bool = False  # A search ran (so "nothing found" can be said).
    search_error: str = ""

    @rx.event
    def open_search(self, in_conversation: bool = False) -> None:
        scope = self.active_id if in_conversation else ""
        self.search_open = True
        self.search_opened += 1
        self.search_scope = scope
        self.search_scope_name = self.active.name if scope else ""
        self.search_results, self.search_cursor = [], ""
        self.searched, self.search_error = False, ""

    @rx.event
    def set_search_open(self, is_open: bool) -> None:
        self.search_open = is_open

    @rx.event
    async def run_search(self, form: dict[str, Any]):
        query = str(form.get("q", "")).strip()
        self.search_query = query
        self.search_results, self.search_cursor, self.search_error = [], "", ""
        # Not "nothing found" for this one while it runs.
        self.searched = False
        if not query:
            return
        self.searching = True
        yield
        await self._page()

    @rx.event
    async def more_results(self):
        if not self.search_cursor or self.searching:
            return
        self.searching = True
        yield
        await self._page()

    @rx.event
    def show_result(self, conversation_id: str, message_id: str, seq: int):
        self.search_open = False
        return [ChatState.open_chat(conversation_id), ChatState.jump_to_message(message_id, seq)]

    async def _page(self) -> None:
        try:
            page = await self._call(
                api_client.search,
                self.search_query,
                self.search_scope or None,
                self.search_cursor or None,
            )
        except api_client.ApiError as exc:
            self.search_error = exc.message
        else:
            model = self._chat_model()
            where = zone(model.time_zone)
            found = [_result(m, model.chats.get(m.conversation_id), where) for m in page.messages]
            self.search_results = [*self.search_results, *found]
            self.search_cursor = page.next_cursor or ""
        self.searching = False
        self.searched = True


def _result(message: Message, chat: ChatItem | None, where: Any) -> SearchResult:
    text = plain(message.body)
    return SearchResult(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        where=chat.name if chat is not None else "",
        sender_name=message.sender_name,
        text=text[:EXCERPT_CHARS] + "…" if len(text) > EXCERPT_CHARS else text,
        when=message.created_at.astimezone(where).strftime("%b %-d, %H:%M"),
    )


def _result_row(result: SearchResult) -> rx.Component:
    return rx.el.button(
        rx.vstack(
            rx.hstack(
                rx.text(result.sender_name, size="2", weight="bold"),
                rx.text(result.where, size="1", color="var(--gray-11)"),
                rx.spacer(),
                rx.text(result.when, size="1", color="var(--gray-11)"),
                width="100%",
                align="baseline",
            ),
            rx.text(result.text, size="2", align="left"),
            spacing="1",
            width="100%",
            align="start",
        ),
        type="button",
        class_name="search-result",
        on_click=SearchState.show_result(result.conversation_id, result.id, result.seq),
    )


def search_button(in_conversation: bool = False) -> rx.Component:
    label = "Search this conversation" if in_conversation else "Search messages"
    return rx.icon_button(
        rx.icon("search", size=16),
        variant="ghost",
        aria_label=label,
        title=label,
        on_click=SearchState.open_search(in_conversation),
        id="search-here" if in_conversation else "search-all",
        data_opened=SearchState.search_opened,
    )


def search_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(
                rx.cond(
                    SearchState.search_scope != "",
                    "Search in " + SearchState.search_scope_name,
                    "Search messages",
                ),
                size="3",
            ),
            rx.dialog.description(
                'Words, "a phrase", from:username, in:#group.',
                size="1",
                color="var(--gray-11)",
            ),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="q",
                        id="search-input",
                        default_value=SearchState.search_query,
                        placeholder="Search",
                        aria_label="Search",
                        auto_focus=True,
                        auto_complete="off",
                        flex="1",
                    ),
                    rx.button("Search", type="submit", loading=SearchState.searching),
                    width="100%",
                ),
                on_submit=SearchState.run_search,
                margin_top="var(--space-3)",
            ),
            rx.cond(
                SearchState.search_error != "",
                rx.callout(SearchState.search_error, color_scheme="red", size="1", margin_top="2"),
            ),
            rx.scroll_area(
                rx.vstack(
                    rx.foreach(SearchState.search_results, _result_row),
                    rx.cond(
                        SearchState.searched
                        & (SearchState.search_results.length() == 0)
                        & (SearchState.search_cursor == ""),
                        rx.text("No messages found.", size="2", color="var(--gray-11)"),
                    ),
                    rx.cond(
                        SearchState.search_cursor != "",
                        rx.button(
                            "More results",
                            variant="soft",
                            size="1",
                            on_click=SearchState.more_results,
                            loading=SearchState.searching,
                        ),
                    ),
                    spacing="2",
                    id="search-results",
                    role="list",
                    aria_label="Results",
                ),
                max_height="60vh",
                margin_top="var(--space-3)",
                type="auto",
            ),
            max_width="560px",
            id="search",
        ),
        open=SearchState.search_open,
        on_open_change=SearchState.set_search_open,
    )
