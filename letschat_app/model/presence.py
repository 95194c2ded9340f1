"""Whether people are there, as the page says it: a dot on avatars, and a line in a direct
conversation's header and the member list.

The service sends each change (online, away, offline with when they were last seen); a tab keeps
the last one per person. What the page shows of a last-seen time is a day and a clock time in the
viewer's zone, which stays true as time passes ("Last seen today at 14:05"), not "5 minutes ago",
which would need redrawing every minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from letschat_protocol import Presence

STATUSES = ("online", "away", "offline")


def status_of(entry: Presence | None) -> str:
    """online | away | offline, or "" while nothing is known (a status this release does not
    know counts as online: the person is there in some way)."""
    if entry is None:
        return ""
    return entry.status if entry.status in STATUSES else "online"


def presence_line(entry: Presence | None, where: tzinfo, now: datetime) -> str:
    status = status_of(entry)
    if status == "online":
        return "Online"
    if status == "away":
        return "Away"
    if entry is None or status != "offline":
        return ""
    if entry.last_seen_at is None:
        return "Offline"
    seen = entry.last_seen_at.astimezone(where)
    today = now.astimezone(where).date()
    clock = seen.strftime("%H:%M")
    if seen.date() == today:
        return f"Last seen today at {clock}"
    if seen.date() == today - timedelta(days=1):
        return f"Last seen yesterday at {clock}"
    if seen.year == today.year:
        return f"Last seen {seen.strftime('%b')} {seen.day}"
    return f"Last seen {seen.strftime('%b')} {seen.day}, {seen.year}"
