"""The one membership check every store operation on a conversation starts from."""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from backend_services.core.errors import conversation_not_found
from backend_services.core.store.database import Document


async def require_member(
    conversations: AsyncCollection[Document], conversation_id: str, user_id: str
) -> None:
    """Raise the not-found a missing conversation gets unless `user_id` is a member."""
    member = await conversations.find_one({"_id": conversation_id, "members": user_id}, {"_id": 1})
    if member is None:
        raise conversation_not_found()
