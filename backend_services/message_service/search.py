"""Search over REST: what the box's text asks for, in the conversations the caller is in now.

Leaving a group takes its messages out of the leaver's searches at once: the conversations are
the caller's at the time of each request, never a list kept from before.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend_services.core.errors import ValidationFailed, conversation_not_found
from backend_services.core.schemas import SearchPage
from backend_services.core.search import BadQuery, SearchQuery, parse_query
from backend_services.core.sessions import Session
from backend_services.core.store import Store
from backend_services.core.store.database import Document
from backend_services.core.store.search import Cursor


@dataclass(frozen=True, slots=True)
class SearchService:
    store: Store

    async def search(
        self,
        session: Session,
        text: str,
        *,
        conversation_id: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> SearchPage:
        """The caller's messages matching `text` (within `conversation_id`, if given), newest
        first, a page at a time."""
        try:
            query = parse_query(text)
        except BadQuery as exc:
            raise ValidationFailed(str(exc)) from exc
        before = Cursor.decode(cursor) if cursor else None
        places = await self.store.conversations.places_for(session.user.id)
        if conversation_id is not None:
            places = [doc for doc in places if doc["_id"] == conversation_id]
            if not places:
                raise conversation_not_found()
        places = await self._named(places, query)
        senders = None
        if query.senders:
            found = await self.store.users.ids_by_username(query.senders)
            senders = set(found.values()) if len(found) == len(set(query.senders)) else set()
        page = await self.store.search.find(
            [doc["_id"] for doc in places],
            words=query.words,
            phrases=query.phrases,
            sender_ids=senders,
            before=before,
            limit=limit,
        )
        next_cursor = page.next.encode() if page.next is not None else None
        return SearchPage(messages=page.messages, next_cursor=next_cursor)

    async def _named(self, places: list[Document], query: SearchQuery) -> list[Document]:
        """Those of `places` that every `in:` of the query names: a group by its name
        (`in:design`, `in:#design`), a direct conversation by the other person
        (`in:@ada`)."""
        for name in query.places:
            if name.startswith("@"):
                others = await self.store.users.ids_by_username([name[1:]])
                other = others.get(name[1:])
                places = [
                    doc
                    for doc in places
                    if doc["kind"] == "direct" and other is not None and other in doc["members"]
                ]
            else:
                group = name.removeprefix("#")
                places = [
                    doc
                    for doc in places
                    if doc["kind"] == "group" and str(doc.get("name", "")).casefold() == group
                ]
        return places
