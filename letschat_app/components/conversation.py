"""The open conversation: header, messages (a markdown subset, never HTML) and the composer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from reflex_components_core.el.elements.inline import A

from letschat_app.components.dialogs import members_dialog
from letschat_app.components.script_button import script_button
from letschat_app.components.search import search_button
from letschat_app.model.timeline import SLOTS
from letschat_app.state.chat import ChatState, slot_name
from letschat_app.state.models import DELETED_TEXT, MessageItem, ReactionItem
from letschat_protocol.emoji import EMOJI, QUICK
from letschat_protocol.models import MAX_BODY_CHARS


def _status(
    status: rx.Var[str], timestamp: rx.Var[str], client_msg_id: rx.Var[str], edited: rx.Var[bool]
) -> rx.Component | rx.Var[Any]:
    return rx.match(
        status,
        ("pending", rx.text("Sending…", size="1", color_scheme="gray", class_name="msg-status")),
        (
            "failed",
            rx.hstack(
                rx.text("Not sent", size="1", color_scheme="red", class_name="msg-status"),
                rx.button(
                    "Retry",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=ChatState.retry(client_msg_id),
                ),
                align="center",
                spacing="2",
            ),
        ),
        # The time; the full date and time on hover (a grouped message shows its time only
        # then: letschat.css).
        rx.fragment(
            rx.moment(
                timestamp,
                format="HH:mm",
                local=True,
                with_title=True,
                title_format="dddd, D MMMM YYYY, HH:mm",
                class_name="msg-time",
            ),
            # Shown whether or not the time is (a grouped message's is on hover only).
            rx.cond(edited, rx.el.span(" (edited)", class_name="msg-edited")),
        ),
    )


def _reaction(message_id: rx.Var[str], reaction: ReactionItem) -> rx.Component:
    """An emoji under a message with its count: pressed if the viewer is among those who
    reacted (a click takes theirs back), who reacted on hover."""
    return rx.button(
        reaction.emoji,
        rx.el.span(reaction.count, class_name="reaction-count"),
        on_click=ChatState.toggle_reaction(message_id, reaction.emoji, reaction.mine),
        size="1",
        variant=rx.cond(reaction.mine, "soft", "outline"),
        radius="full",
        title=reaction.who,
        aria_pressed=rx.cond(reaction.mine, "true", "false"),
        aria_label=f"{reaction.emoji} {reaction.count}: {reaction.who}",
        class_name="reaction",
    )


def _who_reacted(reactions: rx.Var[list[ReactionItem]]) -> rx.Component:
    """Who put each emoji there, for a touch screen (no hover to show a pill's title; a tap on
    a pill toggles). letschat.css shows it only where the pointer is coarse."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.icon_button(
                rx.icon("users", size=14),
                size="1",
                variant="ghost",
                radius="full",
                aria_label="Who reacted",
                class_name="who-reacted",
            )
        ),
        rx.popover.content(
            rx.vstack(
                rx.foreach(
                    reactions,
                    lambda reaction: rx.hstack(
                        rx.text(reaction.emoji),
                        rx.text(reaction.who, size="2"),
                        align="center",
                        class_name="who-row",
                    ),
                ),
                spacing="1",
            ),
            size="1",
        ),
    )


def _emoji_choice(message_id: rx.Var[str], emoji: str, label: str, **props: Any) -> rx.Component:
    return rx.button(
        emoji,
        on_click=ChatState.react(message_id, emoji, True),
        variant="ghost",
        aria_label=f"React with {label}",
        class_name="emoji-choice",
        **props,
    )


def _emoji_picker(message_id: rx.Var[str]) -> rx.Component:
    """The emoji a message can get: the common ones first, all of them findable by name."""
    return rx.popover.root(
        rx.popover.trigger(_action("smile_plus", "Add a reaction", None)),
        rx.popover.content(
            rx.vstack(
                rx.hstack(
                    *[_emoji_choice(message_id, emoji, emoji, size="2") for emoji in QUICK],
                    spacing="1",
                ),
                # letschat.js narrows the choices to the names typed here.
                rx.input(
                    placeholder="Find an emoji, e.g. :tada:",
                    size="1",
                    width="100%",
                    class_name="emoji-filter",
                    aria_label="Find an emoji by name",
                ),
                rx.grid(
                    *[
                        _emoji_choice(
                            message_id,
                            emoji,
                            f":{name}:",
                            size="1",
                            title=f":{name}:",
                            custom_attrs={"data-name": name},
                        )
                        for name, emoji in EMOJI.items()
                    ],
                    columns="10",
                    spacing="1",
                    class_name="emoji-grid",
                ),
                spacing="2",
            ),
            size="1",
            max_width="360px",
        ),
    )


def _action(icon: str, label: str, on_click: Any, **props: Any) -> rx.Component:
    return rx.icon_button(
        rx.icon(icon, size=16),
        size="1",
        variant="ghost",
        on_click=on_click,
        aria_label=label,
        title=label,
        class_name="msg-action",
        **props,
    )


def _actions(
    message_id: rx.Var[str], mine: rx.Var[bool], can_delete: rx.Var[bool], can_act: rx.Var[bool]
) -> rx.Component:
    """What can be done to a message, on hover or keyboard focus (letschat.css)."""
    return rx.cond(
        can_act,
        rx.hstack(
            _emoji_picker(message_id),
            _action("reply", "Reply", ChatState.start_reply(message_id)),
            rx.cond(mine, _action("pencil", "Edit", ChatState.start_edit(message_id))),
            # Yours, or anyone's in a group you created.
            rx.cond(
                can_delete,
                _action("trash_2", "Delete", ChatState.ask_delete(message_id), color_scheme="red"),
            ),
            spacing="1",
            class_name="msg-actions",
        ),
    )


# Links may go to the web or to mail, nowhere else (no `javascript:`, no relative paths).
# A mention is a link to "#mention-<name>" (`link_mentions`), shown as a mention, going nowhere.
_SAFE_URL = rx.vars.FunctionStringVar.create(
    "(url) => (/^(https?:|mailto:)/i.test(url) || /^#mention-[a-z0-9_.-]+$/.test(url)"
    " ? url : undefined)"
)
# What markdown may do in a message: bold, italic, strikethrough, code, code blocks, quotes,
# lists and links. Headings read as a bold line; images, tables and rules as their text.
_NOT_IN_MESSAGES = ["img", "table", "thead", "tbody", "tr", "th", "td", "hr", "input"]


def _block(tag: str, class_name: str) -> Callable[..., rx.Component]:
    """A markdown element shown as the plain `tag`, styled by letschat.css."""
    return lambda value, **_: getattr(rx.el, tag)(value, class_name=class_name)


_MESSAGE_MARKDOWN = {
    "p": _block("p", "md-p"),
    **{f"h{n}": _block("p", "md-p md-heading") for n in range(1, 7)},
    "ul": _block("ul", "md-list"),
    "ol": _block("ol", "md-list"),
    "li": _block("li", "md-item"),
    "blockquote": _block("blockquote", "md-quote"),
    "pre": _block("pre", "md-pre"),
    "code": lambda value, **_: rx.el.code(value, class_name="md-code"),
    # A plain <a> (rx.el.a is react-router's Link, which drops the href markdown gives it).
    "a": lambda value, **_: A.create(
        value, target="_blank", rel="noopener noreferrer", class_name="md-link"
    ),
}


def _formatted(body: rx.Var[str]) -> rx.Component:
    """A message body as the small markdown subset chat uses, URLs auto-linked. Raw HTML is
    never rendered (it shows as text); links open apart, only to http(s) and mailto."""
    return rx.el.div(
        rx.markdown.root(
            body,
            component_map=_MESSAGE_MARKDOWN,
            remark_plugins=[rx.markdown.plugin.gfm],  # Autolinks, strikethrough.
            rehype_plugins=[],  # Never rehype-raw: HTML stays text.
            custom_attrs={
                "urlTransform": _SAFE_URL,
                "disallowedElements": _NOT_IN_MESSAGES,
                "unwrapDisallowed": True,
            },
        ),
        class_name="msg-body",
    )


# moment.js calendar formats for the line above a day's first message.
DAY_LABELS = {
    "sameDay": "[Today]",
    "lastDay": "[Yesterday]",
    "lastWeek": "dddd",
    "sameElse": "dddd, D MMMM YYYY",
    "nextDay": "dddd, D MMMM YYYY",
    "nextWeek": "dddd, D MMMM YYYY",
}


# A memoized component with plain props: when a message arrives, React renders only the bubbles
# whose props changed (the new one), not every message of the conversation again.
@rx.memo
def message_bubble(
    message_key: rx.Var[str],
    sender_name: rx.Var[str],
    body: rx.Var[str],
    timestamp: rx.Var[str],
    client_msg_id: rx.Var[str],
    status: rx.Var[str],
    mine: rx.Var[bool],
    first_unread: rx.Var[bool],
    continues: rx.Var[bool],
    day_start: rx.Var[bool],
    initials: rx.Var[str],
    avatar_color: rx.Var[str],
    message_id: rx.Var[str],
    edited: rx.Var[bool],
    deleted: rx.Var[bool],
    reactions: rx.Var[list[ReactionItem]],
    reply_id: rx.Var[str],
    reply_seq: rx.Var[int],
    reply_name: rx.Var[str],
    reply_excerpt: rx.Var[str],
    markdown: rx.Var[str],
    can_delete: rx.Var[bool],
    rest: rx.RestProp,
) -> rx.Component:
    # A run of messages from one sender within a few minutes shows their name and avatar once,
    # on its first message (and again after the "New messages" line).
    heads = ~continues | first_unread
    bubble = rx.box(
        rx.cond(
            ~mine & heads,
            rx.text(sender_name, size="1", weight="bold", class_name="msg-sender"),
        ),
        # The message this one answers: a click shows it (loading older pages if need be).
        rx.cond(
            reply_id != "",
            rx.el.button(
                rx.el.span(reply_name, class_name="reply-name"),
                rx.el.span(reply_excerpt, class_name="reply-excerpt"),
                on_click=ChatState.jump_to_message(reply_id, reply_seq),
                class_name="reply-quote",
                type="button",
                title="Show the message this answers",
            ),
        ),
        # A small markdown subset; never HTML (see `_formatted`).
        rx.cond(
            deleted,
            rx.text(DELETED_TEXT, size="2", class_name="msg-deleted"),
            _formatted(rx.cond(markdown != "", markdown, body)),
        ),
        _status(status, timestamp, client_msg_id, edited),
        padding_x="var(--space-3)",
        padding_y="var(--space-2)",
        border_radius="var(--radius-4)",
        width="fit-content",
        background=rx.cond(mine, "var(--accent-4)", "var(--gray-3)"),
        opacity=rx.cond(status == "sent", "1", "0.75"),
        class_name=rx.cond(
            mine,
            rx.cond(heads, "message mine", "message mine continues"),
            rx.cond(heads, "message theirs", "message theirs continues"),
        ),
        data_status=status,
        data_key=message_key,
    )
    bubble = rx.box(
        bubble,
        rx.cond(
            reactions.length() > 0,  # pyright: ignore[reportAttributeAccessIssue]
            rx.hstack(
                rx.foreach(reactions, lambda reaction: _reaction(message_id, reaction)),
                _who_reacted(reactions),
                spacing="1",
                wrap="wrap",
                class_name="reactions",
            ),
        ),
        _actions(message_id, mine, can_delete, (status == "sent") & ~deleted),
        class_name="msg-row",
        max_width="75%",
    )
    return rx.vstack(
        rx.cond(
            day_start,
            rx.hstack(
                rx.divider(),
                # "Today", "Yesterday", a weekday within the week, else the date: as the
                # browser sees it now.
                rx.moment(
                    timestamp,
                    local=True,
                    calendar=DAY_LABELS,
                    class_name="day-label",
                    white_space="nowrap",
                ),
                rx.divider(),
                align="center",
                width="100%",
                role="separator",
                class_name="day-line",
            ),
        ),
        rx.cond(
            first_unread,
            rx.hstack(
                rx.divider(),
                rx.text("New messages", size="1", color_scheme="red", white_space="nowrap"),
                rx.divider(),
                align="center",
                width="100%",
                id="first-unread",
            ),
        ),
        rx.cond(
            mine,
            bubble,
            rx.hstack(
                # Others' messages line up beside their avatar, shown on a run's first one.
                rx.cond(
                    heads,
                    rx.avatar(
                        fallback=initials,
                        size="2",
                        radius="full",
                        color_scheme=avatar_color,  # pyright: ignore[reportArgumentType]
                        class_name="msg-avatar",
                        aria_hidden="true",
                    ),
                    rx.box(width="var(--space-6)", flex_shrink="0"),
                ),
                bubble,
                align="start",
                spacing="2",
                width="100%",
            ),
        ),
        rest,
        align_items=rx.cond(mine, "flex-end", "flex-start"),
        width="100%",
        spacing="1",
        margin_top=rx.cond(heads, "var(--space-2)", "calc(-1 * var(--space-1))"),
    )


def _system_line(message: MessageItem) -> rx.Component:
    """ "Ada added Grace": centred in the stream, with no actions."""
    return rx.center(
        rx.text(message.body, size="1", color="var(--gray-11)"),
        class_name="system-line",
        data_key=message.key,
        width="100%",
        key=message.key,
    )


def _bubble(message: MessageItem) -> rx.Component:
    return rx.cond(message.system, _system_line(message), _message_bubble(message))


def _message_bubble(message: MessageItem) -> rx.Component:
    return message_bubble(
        message_key=message.key,
        sender_name=message.sender_name,
        body=message.body,
        timestamp=message.timestamp,
        client_msg_id=message.client_msg_id,
        status=message.status,
        mine=message.mine,
        first_unread=(ChatState.first_unread_seq > 0) & (message.seq == ChatState.first_unread_seq),
        continues=message.continues,
        day_start=message.day_start,
        initials=message.initials,
        avatar_color=message.avatar_color,
        message_id=message.id,
        edited=message.edited,
        deleted=message.deleted,
        reactions=message.reactions,
        reply_id=message.reply_id,
        reply_seq=message.reply_seq,
        reply_name=message.reply_name,
        reply_excerpt=message.reply_excerpt,
        markdown=message.markdown,
        can_delete=message.mine | ChatState.moderates,
        # By message, not by position: loading older messages above keeps the rendered ones.
        key=message.key,
    )


def _slot(index: rx.Var[int]) -> rx.Component | rx.Var[Any]:
    """One seq bucket of the window (model/timeline.py): the slots come in the window's order,
    so the page's DOM order is the conversation's order."""
    cases = [(n, rx.foreach(getattr(ChatState, slot_name(n)), _bubble)) for n in range(SLOTS)]
    return rx.match(index, *cases, rx.fragment())


def _message_list() -> rx.Component:
    # column-reverse starts scrolled to the newest message and keeps the view still when older
    # messages are added above (scrollTop is measured from the bottom).
    return rx.box(
        rx.vstack(
            rx.cond(
                ChatState.has_older,
                rx.center(
                    rx.button(
                        "Load older messages",
                        on_click=ChatState.load_older,
                        loading=ChatState.loading_older,
                        variant="ghost",
                        size="1",
                        id="load-older",
                    ),
                    width="100%",
                ),
            ),
            rx.cond(
                (ChatState.slot_order.length() == 0) & (ChatState.unsent.length() == 0),
                rx.center(
                    rx.text("No messages yet. Say hello!", color_scheme="gray", size="2"),
                    padding="var(--space-6)",
                ),
            ),
            rx.foreach(ChatState.slot_order, _slot),
            rx.foreach(ChatState.unsent, _bubble),
            # Filled by letschat.js with what is typed while this page is offline, until the
            # queued sends reach the app's backend and show as pending above.
            rx.el.div(id="offline-outbox", width="100%"),
            spacing="2",
            padding="var(--space-3)",
            width="100%",
        ),
        id="messages",
        # A screen reader hears new messages as they come (a log is a polite live region);
        # the list takes the focus, so the arrow keys and Page Up/Down scroll it.
        role="log",
        aria_label=ChatState.active.name,
        tab_index=0,
        width="100%",
        display="flex",
        flex_direction="column-reverse",
        overflow_y="auto",
        flex="1",
        min_height="0",
        position="relative",
    )


def _compose_mode() -> rx.Component:
    """Above the composer while it edits a message or answers one; Escape cancels."""

    def banner(icon: str, label: rx.Component, excerpt: rx.Var[str] | str) -> rx.Component:
        return rx.hstack(
            rx.icon(icon, size=14, flex_shrink="0"),
            label,
            rx.text(excerpt, size="1", color_scheme="gray", trim="both", class_name="mode-excerpt"),
            rx.spacer(),
            rx.icon_button(
                rx.icon("x", size=14),
                size="1",
                variant="ghost",
                on_click=ChatState.cancel_compose,
                aria_label="Cancel",
                id="composer-cancel",
                type="button",
            ),
            align="center",
            width="100%",
            spacing="2",
            class_name="compose-mode",
        )

    return rx.cond(
        ChatState.editing_id != "",
        banner("pencil", rx.text("Editing your message", size="1", weight="bold"), ""),
        rx.cond(
            ChatState.replying.id != "",
            banner(
                "reply",
                rx.text("Replying to ", ChatState.replying.sender_name, size="1", weight="bold"),
                ChatState.replying.body,
            ),
        ),
    )


def _delete_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete message?"),
            rx.alert_dialog.description(
                "It is deleted for everyone in the conversation. This cannot be undone."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=ChatState.cancel_delete,
                    )
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        # The id goes with the click: the dialog closing may clear it first.
                        on_click=ChatState.delete_message(ChatState.deleting_id),
                        id="confirm-delete",
                    )
                ),
                spacing="3",
                justify="end",
                margin_top="var(--space-4)",
            ),
        ),
        open=ChatState.deleting_id != "",
        # Escape, or a click outside, is a "no".
        on_open_change=lambda _open: ChatState.cancel_delete(),
    )


def _composer() -> rx.Component:
    # No maxlength: a paste longer than a message may be stays whole, and letschat.js counts it
    # against `data-limit` (near the limit, what is left; past it, by how much) and holds it
    # back until it fits.
    return rx.form(
        rx.vstack(
            # Always there, so the composer does not move when someone starts typing.
            rx.text(
                ChatState.typing_line,
                id="typing-line",
                class_name="typing-line",
                size="1",
                aria_live="polite",
            ),
            _compose_mode(),
            rx.hstack(
                rx.text_area(
                    name="body",
                    id="composer",
                    # A new key starts an edit afresh with the message's body in the box.
                    key=ChatState.editing_id,
                    default_value=ChatState.editing_body,
                    placeholder="Type a message",
                    aria_label="Message",
                    rows="1",
                    auto_height=True,
                    # Grows with what is typed, up to a third of the screen, then scrolls.
                    max_height="33vh",
                    overflow_y="auto",
                    flex="1",
                    size="3",
                    auto_focus=True,
                    custom_attrs={
                        "data-limit": str(MAX_BODY_CHARS),
                        "aria-describedby": "composer-count",
                        # An edit is not news to the others: letschat.js says nothing of it.
                        "data-editing": rx.cond(ChatState.editing_id != "", "true", "false"),
                        # Whose draft it holds: the box is one for every conversation, and
                        # letschat.js keeps what is typed in each with it.
                        "data-conversation": ChatState.active_id,
                        "data-user": ChatState.user_id,
                    },
                ),
                rx.button(
                    rx.icon("send", size=16),
                    rx.cond(ChatState.editing_id != "", "Save", "Send"),
                    type="submit",
                    size="3",
                ),
                align="end",
                width="100%",
            ),
            # ↑ in an empty composer edits the user's newest message (letschat.js clicks it).
            script_button("edit-last", ChatState.start_edit("")),
            # Typing, and leaving the composer without sending (letschat.js clicks these, the
            # first at most every few seconds).
            script_button("typing-on", ChatState.typed),
            script_button("typing-off", ChatState.stopped_typing),
            rx.el.span(id="composer-count", class_name="composer-count", aria_live="polite"),
            # Whom "@" offers (letschat.js shows the matches in a menu over the composer).
            rx.el.datalist(
                rx.foreach(
                    ChatState.active_members,
                    lambda p: rx.el.option(p.display_name, value=p.username),
                ),
                id="mention-people",
            ),
            spacing="1",
            width="100%",
            padding="var(--space-3)",
            border_top="1px solid var(--gray-5)",
        ),
        on_submit=ChatState.send,
        reset_on_submit=True,
        width="100%",
    )


def _header() -> rx.Component:
    chat = ChatState.active
    return rx.hstack(
        rx.icon_button(
            rx.icon("arrow_left"),
            on_click=ChatState.close_chat,
            variant="ghost",
            display=rx.breakpoints(initial="flex", md="none"),
            aria_label="Back to conversations",
        ),
        rx.vstack(
            rx.heading(chat.name, size="4", id="chat-title"),
            rx.text(
                rx.cond(
                    chat.kind == "group",
                    rx.cond(chat.member_count == 1, "1 member", f"{chat.member_count} members"),
                    rx.cond(
                        ChatState.active_presence != "", ChatState.active_presence, "Direct message"
                    ),
                ),
                size="1",
                color="var(--gray-11)",
                id="chat-subtitle",
            ),
            spacing="0",
        ),
        rx.spacer(),
        search_button(in_conversation=True),
        rx.icon_button(
            rx.cond(chat.muted, rx.icon("bell_off"), rx.icon("bell")),
            on_click=ChatState.toggle_mute(chat.id),
            variant="ghost",
            aria_label=rx.cond(chat.muted, "Unmute", "Mute"),
            title=rx.cond(chat.muted, "Unmute", "Mute"),
        ),
        rx.cond(chat.kind == "group", members_dialog()),
        align="center",
        width="100%",
        padding="var(--space-3)",
        border_bottom="1px solid var(--gray-5)",
    )


def conversation_panel() -> rx.Component:
    return rx.cond(
        ChatState.active_id != "",
        rx.vstack(
            _header(),
            _message_list(),
            rx.button(
                "Jump to newest",
                rx.icon("arrow_down", size=14),
                on_click=ChatState.jump_to_newest,
                size="1",
                variant="soft",
                position="absolute",
                bottom="96px",
                right="24px",
                id="jump-newest",
                class_name="jump-newest",
                # letschat.css shows it only when there is something newer to jump to.
                data_behind=rx.cond(ChatState.at_newest, "false", "true"),
            ),
            _composer(),
            _delete_dialog(),
            height="100%",
            spacing="0",
            position="relative",
        ),
        rx.center(
            rx.vstack(
                rx.icon("messages_square", size=48, color="var(--gray-8)"),
                rx.text("Pick a conversation, or start one with “New chat”.", color_scheme="gray"),
                align="center",
            ),
            height="100%",
        ),
    )
