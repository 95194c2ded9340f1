"""Message search: the words a message is found by, and what a search box's text asks for.

A message is stored with its `terms`: the distinct words of its body, case-folded (NFKC, so
full-width letters are the ordinary ones), as the multikey index `by_term` holds them next to the
message's time. This works the same on MongoDB and on the embedded SecantusDB, which has no
text index. A search asks for every word it was given (in any order), each "quoted phrase" as
written (case aside), `from:` someone and `in:` a conversation.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass, field

# A word: letters, digits and underscores of any script.
_WORD = re.compile(r"\w+")
# Longer "words" (hashes, base64) are kept cut to this; few people search for them whole.
MAX_TERM_CHARS = 40
# A message is found by at most this many distinct words (a message is at most 4,000 characters).
MAX_TERMS = 300
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 10


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def terms(body: str) -> list[str]:
    """The words `body` is found by, each once."""
    found = dict.fromkeys(word[:MAX_TERM_CHARS] for word in _WORD.findall(fold(body)))
    return list(found)[:MAX_TERMS]


@dataclass
class SearchQuery:
    """What a search box's text asks for."""

    words: list[str] = field(default_factory=list)  # Every one of them, folded.
    phrases: list[str] = field(default_factory=list)  # Folded, spaces collapsed.
    senders: list[str] = field(default_factory=list)  # from: usernames.
    places: list[str] = field(default_factory=list)  # in: names ("#design", "@ada", "design").

    @property
    def empty(self) -> bool:
        return not (self.words or self.senders)


class BadQuery(ValueError):
    """A search text that asks for nothing, or too much."""


def parse_query(text: str) -> SearchQuery:
    """`lunch "at noon" from:ada in:#food` -> words, phrases, senders and places."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"Search for at most {MAX_QUERY_CHARS} characters.")
    try:
        parts = shlex.split(text, posix=True)
    except ValueError:  # An unclosed quote: read it as words.
        parts = text.replace('"', " ").split()
    query = SearchQuery()
    quoted = {match.strip() for match in re.findall(r'"([^"]*)"', text)}
    for part in parts:
        key, colon, value = part.partition(":")
        if colon and value and key.casefold() in {"from", "in"}:
            value = value.strip()
            if key.casefold() == "from":
                query.senders.append(value.removeprefix("@").casefold())
            else:
                query.places.append(value.casefold())
            continue
        if part.strip() in quoted and " " in part.strip():
            query.phrases.append(" ".join(fold(part).split()))
        query.words.extend(terms(part))
    query.words = list(dict.fromkeys(query.words))
    if len(query.words) > MAX_QUERY_WORDS:
        raise BadQuery(f"Search for at most {MAX_QUERY_WORDS} words at a time.")
    if query.empty:
        raise BadQuery("Search for some words, or for from:someone.")
    return query
