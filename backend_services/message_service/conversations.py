"""Conversations as their members see them: listing, opening, groups and their members.

Each operation answers with wire models and tells the sockets concerned itself, so REST and the
socket only parse and answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from backend_services.core.errors import Conflict, RateLimited
from backend_services.core.schemas import Conversation, GroupSummary, SystemEvent, User
from backend_services.core.sessions import Session
from backend_services.core.store import Store
from backend_services.core.store.conversations import decode_page_key, encode_page_key
from backend_services.core.store.database import stored_now
from backend_services.message_service.hub import Hub

ADDS_WINDOW = timedelta(hours=1)
# Joins, leaves, renames and removals that write a line in a group's stream, per person an hour:
# far more than anyone manages a group by hand, few enough that nobody floods one with lines.
GROUP_CHANGES_PER_HOUR = 60


def system_text(event: SystemEvent) -> str:
    """A system line in words."""
    actor, target = event.actor_name, event.target_name or "someone"
    return {
        "joined": f"{actor} joined",
        "left": f"{actor} left",
        "added": f"{actor} added {target}",
        "removed": f"{actor} removed {target}",
        "renamed": f"{actor} renamed the group to {event.name}",
        "described": f"{actor} changed the group's description",
    }.get(event.kind, f"{actor} changed the group")


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None  # Where the next page starts; None when this is the last.


@dataclass(frozen=True, slots=True)
class ConversationService:
    store: Store
    hub: Hub
    adds_per_hour: int
    max_groups_per_user: int

    async def list_page(
        self, session: Session, *, limit: int, cursor: str | None = None
    ) -> ConversationPage:
        """The caller's conversations, newest activity first, `limit` after `cursor` (which a
        previous page gave)."""
        after = None if cursor is None else decode_page_key(cursor)
        page, last = await self.store.conversations.list_page(
            session.user.id, limit=limit, after=after
        )
        return ConversationPage(page, None if last is None else encode_page_key(last))

    async def get(self, session: Session, conversation_id: str) -> Conversation:
        conversations = self.store.conversations
        doc = await conversations.get_for_member(conversation_id, session.user.id)
        return await conversations.view(doc, session.user.id)

    async def search_groups(self, prefix: str, *, limit: int) -> list[GroupSummary]:
        """Public groups whose name starts with `prefix`."""
        return await self.store.conversations.search_public(prefix, limit=limit)

    async def open_direct(self, session: Session, user_id: str) -> tuple[Conversation, bool]:
        """The one direct conversation with `user_id`, and whether it is new (then both of
        them are told, each with their own view of it)."""
        conversations = self.store.conversations
        me = session.user.id
        doc, created = await conversations.open_direct(me, user_id)
        if not created:
            return await conversations.view(doc, me), False
        views = {member: await conversations.view(doc, member) for member in doc["members"]}
        for member, view in views.items():
            await self.hub.publish_conversation([member], view)
        return views[me], True

    async def create_group(
        self, session: Session, name: str, member_ids: list[str], *, is_public: bool
    ) -> Conversation:
        """A new group of the caller and `member_ids`, within the caller's allowance of adds
        and everyone's limit of groups; each added member is told who added them."""
        me = session.user.id
        others = [m for m in dict.fromkeys(member_ids) if m != me]
        await self._admit(session, others, joining=[me, *others])
        conversations = self.store.conversations
        doc = await conversations.create_group(me, name, others, is_public=is_public)
        # Nobody has read anything of a new group: one view serves every member.
        view = await conversations.view(doc, me)
        await self.hub.publish_conversation([me], view)
        await self.hub.publish_conversation(others, view, added_by=session.user)
        return view

    async def add_member(
        self, session: Session, conversation_id: str, user_id: str
    ) -> Conversation:
        """Add someone to a group the caller belongs to; they are told who added them."""
        conversations = self.store.conversations
        # Membership first: an outsider learns nothing, and spends none of their allowance.
        doc = await conversations.get_for_member(conversation_id, session.user.id)
        if user_id not in doc["members"]:
            await self._admit(session, [user_id], joining=[user_id])
        doc, added = await conversations.add_member(conversation_id, session.user.id, user_id)
        if added:
            newcomer = await self.store.users.get(user_id)
            await self._announce(conversation_id, session.user, "added", target=newcomer)
            await self.hub.publish_conversation(
                [user_id], await conversations.view(doc, user_id), added_by=session.user
            )
        return await conversations.view(doc, session.user.id)

    async def join(self, session: Session, conversation_id: str) -> Conversation:
        """Join a public group (the caller's sockets are told, if they were not a member)."""
        conversations = self.store.conversations
        me = session.user.id
        members = await conversations.members_of([conversation_id])
        if me not in members.get(conversation_id, ()):
            await self._admit(session, [], joining=[me])
            await self._pace(session)
        doc, added = await conversations.join(conversation_id, me)
        if added:
            await self._announce(conversation_id, session.user, "joined")
        view = await conversations.view(doc, me)
        if added:
            await self.hub.publish_conversation([me], view)
        return view

    async def leave(self, session: Session, conversation_id: str) -> None:
        """Leave a group; the caller's sockets stop following it, the others see a line."""
        await self.store.conversations.get_for_member(conversation_id, session.user.id)
        await self._pace(session)
        await self.store.conversations.leave(conversation_id, session.user.id)
        await self.hub.publish_left(session.user.id, conversation_id)
        await self._announce(conversation_id, session.user, "left")

    async def update_group(
        self,
        session: Session,
        conversation_id: str,
        *,
        name: str | None,
        description: str | None,
    ) -> Conversation:
        """Rename or describe a group (its creator only); a rename shows as a line."""
        conversations = self.store.conversations
        await self._pace(session)
        before, after = await conversations.update_group(
            conversation_id, session.user.id, name=name, description=description
        )
        if after["name"] != before["name"]:
            await self._announce(conversation_id, session.user, "renamed", name=after["name"])
        elif after.get("description") != before.get("description"):
            await self._announce(conversation_id, session.user, "described")
        return await conversations.view(after, session.user.id)

    async def remove_member(self, session: Session, conversation_id: str, user_id: str) -> None:
        """The group's creator removes someone: their sockets stop following it, the others
        see a line."""
        await self._pace(session)
        removed = await self.store.conversations.remove_member(
            conversation_id, session.user.id, user_id
        )
        if removed:
            await self.hub.publish_left(user_id, conversation_id)
            target = await self.store.users.get(user_id)
            await self._announce(conversation_id, session.user, "removed", target=target)

    async def _announce(
        self,
        conversation_id: str,
        actor: User,
        kind: str,
        *,
        target: User | None = None,
        name: str | None = None,
    ) -> None:
        """A system line in the group's stream, stored and delivered like a message: every
        member sees it in order, and their app learns that the group changed."""
        event = SystemEvent(
            kind=kind,
            actor_id=actor.id,
            actor_name=actor.display_name,
            target_id=target.id if target is not None else None,
            target_name=target.display_name if target is not None else None,
            name=name,
        )
        message, _ = await self.store.messages.append(
            conversation_id,
            actor,
            system_text(event),
            f"system-{uuid.uuid4().hex}",
            known_member=True,  # Also the one who has just left.
            sender_read=False,
            system=event.model_dump(exclude_none=True),
        )
        await self.hub.publish_message(message)

    async def _pace(self, session: Session) -> None:
        """Refuse a change that writes a system line once the caller made too many an hour."""
        wait = await self.store.quotas.take(
            f"group-changes:{session.user.id}",
            1,
            limit=GROUP_CHANGES_PER_HOUR,
            window=ADDS_WINDOW,
            now=stored_now(),
        )
        if wait is not None:
            raise RateLimited(
                f"You can join, leave or change groups at most {GROUP_CHANGES_PER_HOUR} times "
                "an hour; try again later.",
                retry_after=wait,
            )

    async def _admit(self, session: Session, added: list[str], *, joining: list[str]) -> None:
        """Refuse unless the caller may add `added` now and everyone `joining` has room for
        one more group. Nothing is counted against the caller when someone has no room."""
        limit = self.adds_per_hour
        if len(added) > limit:  # Refused whatever the count: no need to ask for anyone's groups.
            raise RateLimited(
                f"You can add at most {limit} people to groups an hour.",
                retry_after=int(ADDS_WINDOW.total_seconds()),
            )
        cap = self.max_groups_per_user
        counts = await self.store.conversations.group_counts(joining, cap=cap)
        full = [user_id for user_id, count in counts.items() if count >= cap]
        if full:
            if full == [session.user.id]:
                raise Conflict(f"You are in {cap} groups, the most there can be; leave one first.")
            raise Conflict(f"Someone you are adding is in {cap} groups, the most there can be.")
        if not added:
            return
        wait = await self.store.quotas.take(
            f"adds:{session.user.id}",
            len(added),
            limit=limit,
            window=ADDS_WINDOW,
            now=stored_now(),
        )
        if wait is not None:
            raise RateLimited(
                f"You can add at most {limit} people to groups an hour; try again later.",
                retry_after=wait,
            )
