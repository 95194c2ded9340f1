"""Dialogs for starting things: a direct chat, a group, joining a public group, a group's members.
Each dialog's own state sits beside it."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.event import EventType

from letschat_app import api_client
from letschat_app.components.notice import error_notice
from letschat_app.components.presence import with_presence
from letschat_app.state.chat import ChatState
from letschat_app.state.models import GroupResult, Person, person


class PeopleSearch(ChatState):
    """Finding people by username prefix, for a new chat, a new group or adding a member."""

    query: str = ""
    people: rx.Field[list[Person]] = rx.field(default_factory=list)
    picked: rx.Field[list[Person]] = rx.field(default_factory=list)
    dialog_error: str = ""
    # The new-group dialog closes itself once the group exists (its submit button can't).
    group_dialog_open: bool = False

    @rx.event
    def set_group_dialog_open(self, is_open: bool) -> None:
        self.group_dialog_open = is_open
        self._clear_search()

    @rx.event
    async def search_people(self, query: str):
        self.query = query
        if not query.strip():
            self.people = []
            return None
        try:
            found = await self._call(api_client.search_users, query.strip())
        except api_client.ApiError as exc:
            self.dialog_error = exc.message
            return None
        picked = {p.id for p in self.picked}
        self.people = [person(u) for u in found if u.id not in picked]
        return None

    @rx.event
    def reset_search(self, _: bool = True) -> None:
        """A dialog opened or closed: start the next search afresh."""
        self._clear_search()

    def _clear_search(self) -> None:
        self.query, self.people, self.picked, self.dialog_error = "", [], [], ""

    @rx.event
    def pick(self, someone: dict[str, Any]) -> None:
        self.picked = [*self.picked, Person(**someone)]
        self.people = [p for p in self.people if p.id != someone["id"]]

    @rx.event
    def unpick(self, user_id: str) -> None:
        self.picked = [p for p in self.picked if p.id != user_id]

    @rx.event
    async def start_direct(self, user_id: str):
        try:
            conversation = await self._call(api_client.open_direct, user_id)
        except api_client.ApiError as exc:
            self.dialog_error = exc.message
            return None
        self._upsert_chat(conversation)
        self._clear_search()
        return ChatState.open_chat(conversation.id)

    @rx.event
    async def create_group(self, form: dict[str, Any]):
        name = str(form.get("name", "")).strip()
        if not name:
            self.dialog_error = "Give the group a name."
            return None
        try:
            conversation = await self._call(
                api_client.create_group,
                name,
                [p.id for p in self.picked],
                bool(form.get("is_public")),
            )
        except api_client.ApiError as exc:
            self.dialog_error = exc.message
            return None
        self._upsert_chat(conversation)
        self._clear_search()
        self.group_dialog_open = False
        return ChatState.open_chat(conversation.id)


def _person_row(someone: Person, action: EventType[()], label: str) -> rx.Component:
    return rx.hstack(
        rx.avatar(fallback=someone.display_name[:2], size="2", radius="full"),
        rx.vstack(
            rx.text(someone.display_name, size="2", weight="medium"),
            rx.text("@", someone.username, size="1", color_scheme="gray"),
            spacing="0",
        ),
        rx.spacer(),
        rx.button(label, size="1", on_click=action, type="button"),
        align="center",
        width="100%",
        class_name="person-row",
    )


def _search_box(placeholder: str) -> rx.Component:
    return rx.input(
        placeholder=placeholder,
        value=PeopleSearch.query,
        on_change=PeopleSearch.search_people.debounce(200),
        width="100%",
        auto_focus=True,
        name="people_query",
    )


# A dialog that opens a conversation does not hand focus back to its trigger as it closes: keys
# typed into the composer meanwhile would land on the trigger, and a space would reopen the dialog.
OPENS_A_CONVERSATION: dict[str, Any] = {"on_close_auto_focus": rx.prevent_default}


def _dialog_error() -> rx.Component:
    return error_notice(PeopleSearch.dialog_error)


def new_chat_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("message_circle_plus", size=16), "New chat", size="2")),
        rx.dialog.content(
            rx.dialog.title("New chat"),
            rx.dialog.description("Search people by username.", size="2"),
            rx.vstack(
                _search_box("Username"),
                _dialog_error(),
                rx.foreach(
                    PeopleSearch.people,
                    lambda p: rx.dialog.close(
                        _person_row(p, PeopleSearch.start_direct(p.id), "Message")
                    ),
                ),
                rx.cond(
                    (PeopleSearch.query != "") & (PeopleSearch.people.length() == 0),
                    rx.text("Nobody by that name yet.", size="2", color_scheme="gray"),
                ),
                spacing="2",
                margin_top="var(--space-3)",
            ),
            **OPENS_A_CONVERSATION,
        ),
        on_open_change=PeopleSearch.reset_search,
    )


def new_group_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("users", size=16), "New group", size="2", variant="soft")
        ),
        rx.dialog.content(
            rx.dialog.title("New group"),
            rx.form(
                rx.vstack(
                    rx.input(
                        name="name",
                        placeholder="Group name",
                        required=True,
                        width="100%",
                        max_length=80,
                    ),
                    rx.hstack(
                        rx.foreach(
                            PeopleSearch.picked,
                            lambda p: rx.badge(
                                p.display_name,
                                rx.icon(
                                    "x",
                                    size=12,
                                    on_click=PeopleSearch.unpick(p.id),
                                    cursor="pointer",
                                ),
                                size="2",
                            ),
                        ),
                        wrap="wrap",
                    ),
                    _search_box("Add people by username"),
                    rx.foreach(
                        PeopleSearch.people, lambda p: _person_row(p, PeopleSearch.pick(p), "Add")
                    ),
                    # A native checkbox: a click on the label of Radix's one submitted the form.
                    rx.el.label(
                        rx.el.input(type="checkbox", name="is_public"),
                        rx.text("Anyone can find and join this group", size="2"),
                        display="flex",
                        gap="var(--space-2)",
                        align_items="center",
                        cursor="pointer",
                    ),
                    _dialog_error(),
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button("Create group", type="submit"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
                on_submit=PeopleSearch.create_group,
            ),
            **OPENS_A_CONVERSATION,
        ),
        open=PeopleSearch.group_dialog_open,
        on_open_change=PeopleSearch.set_group_dialog_open,
    )


class GroupBrowser(ChatState):
    group_query: str = ""
    groups: rx.Field[list[GroupResult]] = rx.field(default_factory=list)
    browse_error: str = ""

    @rx.event
    async def find_groups(self, query: str = ""):
        self.group_query = query
        try:
            found = await self._call(api_client.public_groups, query.strip())
        except api_client.ApiError as exc:
            self.browse_error = exc.message
            return
        mine = set(self._chat_model().chats)
        self.groups = [GroupResult(g.id, g.name, g.member_count) for g in found if g.id not in mine]
        self.browse_error = ""

    @rx.event
    async def join_group(self, conversation_id: str):
        try:
            conversation = await self._call(api_client.join, conversation_id)
        except api_client.ApiError as exc:
            self.browse_error = exc.message
            return None
        self._upsert_chat(conversation)
        return ChatState.open_chat(conversation.id)


def browse_groups_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("search", size=16), "Browse groups", size="2", variant="soft")
        ),
        rx.dialog.content(
            rx.dialog.title("Public groups"),
            rx.vstack(
                rx.input(
                    placeholder="Search groups",
                    value=GroupBrowser.group_query,
                    on_change=GroupBrowser.find_groups.debounce(200),
                    width="100%",
                ),
                error_notice(GroupBrowser.browse_error),
                rx.foreach(
                    GroupBrowser.groups,
                    lambda g: rx.hstack(
                        rx.text(g.name, weight="medium"),
                        rx.text(g.member_count, " members", size="1", color_scheme="gray"),
                        rx.spacer(),
                        rx.dialog.close(
                            rx.button("Join", size="1", on_click=GroupBrowser.join_group(g.id))
                        ),
                        width="100%",
                        align="center",
                        class_name="group-row",
                    ),
                ),
                rx.cond(
                    GroupBrowser.groups.length() == 0,
                    rx.text("No public groups to join yet.", size="2", color_scheme="gray"),
                ),
                spacing="2",
                margin_top="var(--space-3)",
            ),
            **OPENS_A_CONVERSATION,
        ),
        on_open_change=lambda _: GroupBrowser.find_groups(""),
    )


class MembersState(ChatState):
    members_error: str = ""

    @rx.event
    async def load_members(self, _: bool = True):
        """The dialog opened: everyone in the group as it is now, and whether they are there
        (kept up to date by the live socket while it is open in a group of up to 50; a bigger
        one's are as they were when it opened)."""
        conversation_id = self.active_id
        if not conversation_id:
            return None
        try:
            conversation = await self._call(api_client.conversation, conversation_id)
            presence = await self._call(api_client.conversation_presence, conversation_id)
        except api_client.ApiError as exc:
            self.members_error = exc.message
            return None
        model = self._chat_model()
        model.upsert(conversation)
        model.presence_notice(presence)
        self.members_error = ""
        return self._publish()

    @rx.event
    async def add(self, someone: dict[str, Any]):
        await self._change((api_client.add_member, self.active_id, someone["id"]))

    @rx.event
    async def save_group(self, form: dict[str, Any]):
        """The creator renamed or described the group."""
        name = str(form.get("name", "")).strip()
        description = str(form.get("description", "")).strip()
        if not name:
            self.members_error = "Give the group a name."
            return
        await self._change((api_client.update_group, self.active_id, name, description))

    @rx.event
    async def remove(self, user_id: str):
        """The creator removes someone from the group."""
        await self._change(
            (api_client.remove_member, self.active_id, user_id),
            (api_client.conversation, self.active_id),
        )

    async def _change(self, *steps: tuple[Any, ...]) -> None:
        """Make the requests of a change to the group (each `(request, *arguments)`), in order;
        the last answers the group as it is now. A refusal is shown in the dialog."""
        conversation: Any = None
        try:
            for request, *arguments in steps:
                conversation = await self._call(request, *arguments)
        except api_client.ApiError as exc:
            self.members_error = exc.message
            return
        self.members_error = ""
        self._upsert_chat(conversation)

    @rx.event
    async def leave(self):
        conversation_id = self.active_id
        try:
            await self._call(api_client.leave, conversation_id)
        except api_client.ApiError as exc:
            self.members_error = exc.message
            return
        self._left(conversation_id)


def _group_details() -> rx.Component:
    """The creator's: the group's name and description."""
    return rx.form(
        rx.vstack(
            rx.input(
                name="name",
                default_value=ChatState.active.name,
                key=ChatState.active.name,
                aria_label="Group name",
                max_length=80,
                width="100%",
            ),
            rx.text_area(
                name="description",
                default_value=ChatState.active.description,
                key=ChatState.active.description,
                placeholder="What is this group for?",
                aria_label="Description",
                max_length=300,
                rows="2",
                width="100%",
            ),
            rx.button("Save", type="submit", size="1", variant="soft"),
            spacing="2",
            align="end",
            width="100%",
        ),
        on_submit=MembersState.save_group,
        margin_top="var(--space-3)",
    )


def _confirm_leave() -> rx.Component:
    """Leaving asks first: the group's messages stop, and a private group can't be joined
    again without someone adding you."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button("Leave group", color_scheme="red", variant="soft")),
        rx.alert_dialog.content(
            rx.alert_dialog.title(f"Leave {ChatState.active.name}?"),
            rx.alert_dialog.description(
                "You stop getting its messages, and it leaves your list. To come back, someone "
                "in it has to add you (or join it again, if it is public)."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Stay", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button("Leave", color_scheme="red", on_click=MembersState.leave)
                ),
                justify="end",
                spacing="3",
                margin_top="var(--space-4)",
            ),
        ),
    )


def members_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("users", size=16), "Members", size="1", variant="soft")
        ),
        rx.dialog.content(
            rx.dialog.title(ChatState.active.name),
            rx.cond(
                ChatState.active.description != "",
                rx.dialog.description(
                    ChatState.active.description, size="2", color="var(--gray-11)"
                ),
            ),
            rx.cond(ChatState.moderates, _group_details()),
            rx.vstack(
                rx.foreach(
                    ChatState.active_people,
                    lambda p: rx.hstack(
                        with_presence(
                            rx.avatar(fallback=p.display_name[:2], size="2", radius="full"),
                            p.presence,
                        ),
                        rx.vstack(
                            rx.hstack(
                                rx.text(p.display_name, size="2"),
                                rx.text("@", p.username, size="1", color="var(--gray-11)"),
                                align="baseline",
                                spacing="2",
                            ),
                            rx.text(
                                p.presence_text,
                                size="1",
                                color="var(--gray-11)",
                                class_name="member-presence",
                            ),
                            spacing="0",
                        ),
                        rx.spacer(),
                        rx.cond(
                            ChatState.moderates & (p.id != ChatState.user_id),
                            rx.button(
                                "Remove",
                                size="1",
                                variant="soft",
                                color_scheme="red",
                                on_click=MembersState.remove(p.id),
                                aria_label="Remove " + p.display_name,
                            ),
                        ),
                        align="center",
                        width="100%",
                        class_name="member-row",
                        data_presence=p.presence,
                    ),
                ),
                rx.divider(),
                rx.text("Add someone", size="2", weight="medium"),
                _search_box("Username"),
                rx.foreach(
                    PeopleSearch.people, lambda p: _person_row(p, MembersState.add(p), "Add")
                ),
                error_notice(MembersState.members_error),
                rx.hstack(
                    _confirm_leave(),
                    rx.spacer(),
                    rx.dialog.close(rx.button("Done", variant="soft")),
                    width="100%",
                ),
                spacing="2",
                margin_top="var(--space-3)",
            ),
        ),
        on_open_change=[MembersState.load_members, PeopleSearch.reset_search],
    )
