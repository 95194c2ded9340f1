"""Messages and read markers: sending, changing, reading history, moving a marker.

Each operation answers with wire models and does its own publishing, the same for a REST call
and a socket's frame; what differs is what a socket has proven already (what it follows).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend_services.core.errors import RateLimited, conversation_not_found
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.schemas import Change, ChangePage, Message, MessagePage
from backend_services.core.sessions import Session
from backend_services.core.store import Store
from backend_services.message_service.connection import Connection
from backend_services.message_service.hub import Hub
from backend_services.message_service.reads import ReadBatcher


@dataclass(frozen=True, slots=True)
class MessageService:
    store: Store
    hub: Hub
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
        reply_to: str | None = None,
    ) -> tuple[Message, bool]:
        """Store a message (idempotent on `client_msg_id`), then fan it out; return it and
        whether it is new.

        A resend is fanned out again: the first send may have been stored without its sender
        hearing so (the database's reply lost), and so never published. Every instance drops
        a seq it has delivered already, so the ones that had it deliver nothing twice.
        `known_member`: the caller has proven membership (its socket follows the conversation).
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
            # A socket's sender gets their marker moved with the instance's next batch of
            # markers; a REST caller at once, so its next request reads what it wrote.
            sender_read=not known_member,
            reply_to=reply_to,
        )
        if known_member:
            self.reads.add(session.user.id, conversation_id, msg.seq, None, echo=False)
        self.hub.typing_ended(session.user.id, conversation_id)
        await self.hub.publish_message(msg)
        return msg, created

    async def edit(
        self,
        session: Session,
        conversation_id: str,
        message_id: str,
        body: str,
        *,
        known_member: bool = False,
    ) -> Message:
        """Edit the caller's message; fan the change out if there was one."""
        await self._check(session, conversation_id, known_member)
        msg, change = await self.store.changes.edit(
            conversation_id, session.user.id, message_id, body
        )
        return await self._publish(msg, change)

    async def delete(
        self, session: Session, conversation_id: str, message_id: str, *, known_member: bool = False
    ) -> Message:
        """Delete a message (the caller's, or any in a group they created)."""
        await self._check(session, conversation_id, known_member)
        msg, change = await self.store.changes.delete(conversation_id, session.user.id, message_id)
        return await self._publish(msg, change)

    async def react(
        self,
        session: Session,
        conversation_id: str,
        message_id: str,
        emoji: str,
        *,
        add: bool,
        known_member: bool = False,
    ) -> Message:
        """Add or take back the caller's reaction (idempotent either way)."""
        await self._check(session, conversation_id, known_member)
        msg, change = await self.store.changes.react(
            conversation_id, session.user.id, message_id, emoji, add=add
        )
        return await self._publish(msg, change)

    async def changes(
        self, session: Session, conversation_id: str, *, after: int, limit: int
    ) -> ChangePage:
        """The changes after `after`, oldest first, each with its message as it is now."""
        await self.store.conversations.require_member(conversation_id, session.user.id)
        batch = await self.store.changes.read_after(conversation_id, after, limit=limit)
        return ChangePage(changes=batch.changes, last_change=batch.through, has_more=batch.has_more)

    async def _check(self, session: Session, conversation_id: str, known_member: bool) -> None:
        """Changes count against the sender's allowance, as sends do; the caller must belong
        to the conversation (a socket that follows it has proven that)."""
        wait = self.send_limiter.try_acquire(session.user.id)
        if wait > 0:
            raise RateLimited(retry_after=max(1, round(wait + 0.5)))
        if not known_member:
            await self.store.conversations.require_member(conversation_id, session.user.id)

    async def _publish(self, msg: Message, change: int | None) -> Message:
        if change is not None:
            await self.hub.publish_change(Change(change=change, message=msg))
        return msg

    async def page(
        self,
        session: Session,
        conversation_id: str,
        *,
        limit: int,
        before_seq: int | None = None,
        after_seq: int | None = None,
    ) -> MessagePage:
        """Messages in ascending seq: without `after_seq` the newest `limit` (before
        `before_seq`), `has_more` saying older ones exist; with it the oldest `limit` after it
        (and before `before_seq`), read without skipping messages still being written,
        `has_more` saying newer ones exist."""
        await self.store.conversations.require_member(conversation_id, session.user.id)
        messages = self.store.messages
        if after_seq is None:
            page, has_more = await messages.page(
                conversation_id, before_seq=before_seq, limit=limit
            )
            return MessagePage(messages=page, has_more=has_more)
        batch = await messages.read_after(
            conversation_id, after_seq, limit=limit, before_seq=before_seq
        )
        return MessagePage(messages=batch.messages, has_more=batch.has_more)

    async def mark_read(
        self, session: Session, conversation_id: str, seq: int, *, origin: str | None = None
    ) -> int | None:
        """Move the read marker as far as the store allows and, if it moved, tell the user's
        other sockets (all of them but `origin`); return the seq it moved to (None: it did not
        move)."""
        moved_to = await self.store.conversations.mark_read(conversation_id, session.user.id, seq)
        if moved_to is not None:
            await self.hub.publish_read(session.user.id, conversation_id, moved_to, origin)
        return moved_to

    async def read_to(self, session: Session, conversation_id: str, seq: int) -> int:
        """A REST read: move the marker as `mark_read` does; return where it is now."""
        moved_to = await self.mark_read(session, conversation_id, seq)
        if moved_to is not None:
            return moved_to
        # It was there already (or further).
        return await self.store.reads.get(conversation_id, session.user.id)

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

    async def typing(self, connection: Connection, conversation_id: str, active: bool) -> None:
        """A socket's `typing`: only in a conversation the socket follows (which proves
        membership without a query); passed on to the other members' sockets."""
        if not connection.follows(conversation_id):
            raise conversation_not_found()
        await self.hub.publish_typing(connection.session.user, conversation_id, active)
