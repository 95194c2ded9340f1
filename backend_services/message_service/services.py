"""What the message service's routes and socket share: the store, the hub and the operations
both edges perform the same way."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from backend_services.core.config import MessageSettings
from backend_services.core.errors import Conflict, RateLimited
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.schemas import Message
from backend_services.core.sessions import Session, SessionVerifier
from backend_services.core.store import Store
from backend_services.core.store.database import Document, stored_now
from backend_services.message_service.connection import Connection
from backend_services.message_service.hub import Hub
from backend_services.message_service.reads import ReadBatcher

ADDS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MessageServices:
    settings: MessageSettings
    store: Store
    hub: Hub
    verifier: SessionVerifier
    send_limiter: RateLimiter
    reads: ReadBatcher

    async def send(
        self,
        session: Session,
        conversation_id: str,
        body: str,
        client_msg_id: str,
        *,
        known_member: bool = False,
    ) -> tuple[Message, bool]:
        """Store a message (idempotent on `client_msg_id`), then fan it out.

        A resend is fanned out again: the first send may have been stored without its sender
        hearing so (the database's reply lost), and so never published. Every instance drops
        a seq it has delivered already, so the ones that had it deliver nothing twice.
        `known_member`: the caller has proven membership (its socket follows the conversation,
        so the hub delivers it live here and knows the next seq as well).
        """
        wait = self.send_limiter.try_acquire(session.user.id)
        if wait > 0:
            raise RateLimited(retry_after=max(1, round(wait + 0.5)))
        msg, created = await self.store.messages.append(
            conversation_id,
            session.user,
            body,
            client_msg_id,
            known_member=known_member,
            seq_hint=functools.partial(self.hub.reserve_seq, conversation_id)
            if known_member
            else None,
            # A socket's sender gets their marker moved with the instance's next batch of
            # markers; a REST caller at once, so its next request reads what it wrote.
            sender_read=not known_member,
        )
        if known_member:
            self.reads.add(session.user.id, conversation_id, msg.seq, None, echo=False)
        await self.hub.publish_message(msg)
        return msg, created

    # --- groups ------------------------------------------------------------------------------

    async def create_group(
        self, session: Session, name: str, member_ids: list[str], *, is_public: bool
    ) -> Document:
        """A new group of the caller and `member_ids`, within the caller's allowance of adds
        and everyone's limit of groups; each added member is told who added them."""
        me = session.user.id
        others = [m for m in dict.fromkeys(member_ids) if m != me]
        await self._admit(session, others, joining=[me, *others])
        doc = await self.store.conversations.create_group(me, name, others, is_public=is_public)
        conversations = self.store.conversations
        view = await conversations.view(doc, me)
        await self.hub.publish_conversation([me], view)
        await self.hub.publish_conversation(others, view, added_by=session.user)
        return doc

    async def add_member(self, session: Session, conversation_id: str, user_id: str) -> Document:
        conversations = self.store.conversations
        # Membership first: an outsider learns nothing, and spends none of their allowance.
        doc = await conversations.get_for_member(conversation_id, session.user.id)
        if user_id not in doc["members"]:
            await self._admit(session, [user_id], joining=[user_id])
        doc, added = await conversations.add_member(conversation_id, session.user.id, user_id)
        if added:
            await self.hub.publish_conversation(
                [user_id], await conversations.view(doc, user_id), added_by=session.user
            )
        return doc

    async def join(self, session: Session, conversation_id: str) -> Document:
        conversations = self.store.conversations
        me = session.user.id
        members = await conversations.members_of([conversation_id])
        if me not in members.get(conversation_id, ()):
            await self._admit(session, [], joining=[me])
        doc, added = await conversations.join(conversation_id, me)
        if added:
            await self.hub.publish_conversation([me], await conversations.view(doc, me))
        return doc

    async def _admit(self, session: Session, added: list[str], *, joining: list[str]) -> None:
        """Refuse unless the caller may add `added` now and everyone `joining` has room for
        one more group. Nothing is counted against the caller when someone has no room."""
        limit = self.settings.adds_per_hour
        if len(added) > limit:  # Refused whatever the count: no need to ask for anyone's groups.
            raise RateLimited(
                f"You can add at most {limit} people to groups an hour.",
                retry_after=int(ADDS_WINDOW.total_seconds()),
            )
        cap = self.settings.max_groups_per_user
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

    async def mark_read(
        self, session: Session, conversation_id: str, seq: int, *, origin: str | None
    ) -> int | None:
        """Move the read marker as far as the store allows and, if it moved, tell the user's
        other sockets; return the seq it moved to (None: it did not move)."""
        moved_to = await self.store.conversations.mark_read(conversation_id, session.user.id, seq)
        if moved_to is not None:
            await self.hub.publish_read(session.user.id, conversation_id, moved_to, origin)
        return moved_to

    async def mark_read_from(self, connection: Connection, conversation_id: str, seq: int) -> None:
        """A socket's `read`: what the socket follows proves membership and bounds the marker,
        so the read joins the instance's next batch of marker writes (a read the socket made
        already costs nothing); a socket that does not follow it takes the checked path.
        """
        bound = connection.read_bound(conversation_id, seq)
        if bound is None:
            await self.mark_read(connection.session, conversation_id, seq, origin=connection.id)
        elif connection.note_read(conversation_id, bound):
            self.reads.add(connection.user_id, conversation_id, bound, connection.id)
