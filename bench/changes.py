"""The mixed workload of `bench.fanout`: besides its messages, the group's senders edit some
of them and react to others, as a busy group does (`--workloads mixed`: 10 % edits and 20 %
reactions, per message sent).

A change goes out right after a message is sent, to a message sent `LAG` messages earlier
(acknowledged by then, so its id is known). An edit comes from that message's sender and
stamps the new body with its own send time; a reaction goes on a message nobody edits, so the
`change` frame that shows it is told apart by its message. Every recipient's `change` frames
are counted and timed like messages.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from bench.wsclient import LeanSocket

CHANGE_FRAME = '{"type":"change"'
# A change targets the message sent this many messages before it.
LAG = 5
EMOJI = "👍"
# An edited body: "bench:<tag>:E<message index>:<edit send time in perf_counter ns>".
EDIT_STAMP = "bench:{tag}:E(\\d+):(\\d+)"
MESSAGE_STAMP = "bench:{tag}:(\\d+):(\\d+)"
ID = re.compile(r'"id":"([0-9a-f]+)"')


def due(index: int, share: float) -> bool:
    """Whether message `index` is followed by a change of a kind making `share` of them:
    spread evenly (10 % is every tenth message), the same in every run."""
    return int((index + 1) * share) > int(index * share)


@dataclass
class ChangeMix:
    tag: str
    conversation_id: str
    edits: float
    reactions: float
    ids: dict[int, str] = field(default_factory=dict)  # Message index -> its id, from its ack.
    sent_ns: dict[int, int] = field(default_factory=dict)  # Reaction target -> when it went.
    edited: set[int] = field(default_factory=set)
    asked: int = 0  # Change frames sent.
    skipped: int = 0  # Changes not sent: their message was not acknowledged yet.
    latencies_ns: list[int] = field(default_factory=list)
    _edit: re.Pattern[str] = field(init=False)
    _message: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self._edit = re.compile(EDIT_STAMP.format(tag=re.escape(self.tag)))
        self._message = re.compile(MESSAGE_STAMP.format(tag=re.escape(self.tag)))

    def on_ack(self, index: int, raw: str) -> None:
        found = ID.search(raw)
        if found is not None:
            self.ids[index] = found.group(1)

    def on_change(self, raw: str) -> None:
        now = time.perf_counter_ns()
        edit = self._edit.search(raw)
        if edit is not None:
            self.latencies_ns.append(now - int(edit.group(2)))
            return
        message = self._message.search(raw)
        if message is not None and (sent := self.sent_ns.get(int(message.group(1)))):
            self.latencies_ns.append(now - sent)

    def after_send(self, index: int, senders: list[LeanSocket]) -> None:
        """Send the changes due after message `index` (from the socket that sent their
        message: an edit must, and a reaction may as well)."""
        target = index - LAG
        if target < 0:
            return
        sender = senders[target % len(senders)]
        if due(index, self.edits):
            self._send(sender, target, edit=True)
        if due(index, self.reactions):
            # Never a message that is edited too: its change frames would be mistaken.
            while target in self.edited or target in self.sent_ns:
                target -= 1
            if target >= 0:
                self._send(senders[target % len(senders)], target, edit=False)

    def _send(self, sender: LeanSocket, target: int, *, edit: bool) -> None:
        message_id = self.ids.get(target)
        if message_id is None or not sender.is_open:
            self.skipped += 1
            return
        sent_ns = time.perf_counter_ns()
        frame: dict[str, object] = {
            "type": "edit" if edit else "react",
            "conversation_id": self.conversation_id,
            "message_id": message_id,
        }
        if edit:
            frame["body"] = f"bench:{self.tag}:E{target}:{sent_ns}"
            self.edited.add(target)
        else:
            frame.update(emoji=EMOJI, add=True)
            self.sent_ns[target] = sent_ns
        self.asked += 1
        sender.send(json.dumps(frame, ensure_ascii=False))
