"""What instances tell each other through the broker: one envelope for every event.

An envelope is a small JSON header (what the hub needs to route the event: its kind, the
conversation, a message's seq or a change's number, the socket to leave out) and, after a
newline, the server frame the sockets get, serialised once by the publisher and passed on as it
is: no instance parses a frame to route it, and no frame is escaped inside another JSON string.

    {"kind":"message","conversation_id":"c1","seq":7}
    {"type":"message","message":{...}}

Instances of the release before this one published bare frames on conversation channels and
JSON-in-JSON on user channels; `decode` still reads both, so a rolling deploy loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, cast

Kind = Literal[
    "message", "change", "conversation", "left", "read", "typing", "presence", "presence_setting"
]
KINDS: frozenset[str] = frozenset(
    {"message", "change", "conversation", "left", "read", "typing", "presence", "presence_setting"}
)
# Kinds published on a conversation's channel besides the numbered ones (ephemeral).
EPHEMERAL: frozenset[str] = frozenset({"typing", "presence"})
# Kinds numbered in their conversation (the header carries the number as `seq`).
NUMBERED: frozenset[str] = frozenset({"message", "change"})


class BadEnvelope(ValueError):
    """Text on a channel that is not an envelope this release can read."""


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    conversation_id: str
    frame: str
    seq: int | None = None  # A message's seq, or a change's number.
    # A read: the socket that made it, which knows already; typing: the user who types.
    exclude: str | None = None

    def encode(self) -> str:
        header: dict[str, str | int] = {"kind": self.kind, "conversation_id": self.conversation_id}
        if self.seq is not None:
            header["seq"] = self.seq
        if self.exclude is not None:
            header["exclude"] = self.exclude
        return f"{json.dumps(header, separators=(',', ':'))}\n{self.frame}"

    @classmethod
    def decode(cls, text: str) -> Envelope:
        head, newline, frame = text.partition("\n")
        try:
            header = json.loads(head)
            if not newline:
                return _legacy(header, text)
            kind, conversation_id = header["kind"], header["conversation_id"]
            seq, exclude = header.get("seq"), header.get("exclude")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadEnvelope(f"not an envelope: {text[:80]!r}") from exc
        if (
            kind not in KINDS
            or not isinstance(conversation_id, str)
            or (seq is not None and type(seq) is not int)
            or (kind in NUMBERED and seq is None)
            or (exclude is not None and not isinstance(exclude, str))
        ):
            raise BadEnvelope(f"not an envelope: {head[:80]!r}")
        return cls(kind, conversation_id, frame, seq, exclude)


def _legacy(header: dict[str, object], text: str) -> Envelope:
    """The previous release's events: a bare message frame, or `{kind, id, frame, exclude}`."""
    if header.get("type") == "message":
        message = header["message"]
        if not isinstance(message, dict):
            raise TypeError("message")
        return Envelope("message", str(message["conversation_id"]), text, int(message["seq"]))
    kind, frame, exclude = header["kind"], header["frame"], header.get("exclude")
    if kind not in KINDS or kind == "message" or not isinstance(frame, str):
        raise TypeError(kind)
    return Envelope(cast(Kind, kind), str(header["id"]), frame, None, str(exclude or "") or None)
