"""The load generator: one process, one event loop, every client socket of one benchmark phase.

It runs apart from the servers so that clients never share their event loop. It connects all
clients, sends `messages` frames at a fixed rate from the first `senders` clients, records the
latency of every (message, recipient) delivery, and writes a JSON summary. It speaks three
protocols: the relay's (bare frames), the message service's (auth, resume, send) and Socket.IO's
for the socket.io peers (join a room, emit `send`). Against the message service every client
also sends `read` frames the way the web app does (`bench/reads.py`), so the figures include
what reading costs. It prints `phase send`
and `phase done` on stdout so the harness can sample server CPU over exactly the measured window.

    python -m bench.load SPEC.json RESULT.json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.changes import CHANGE_FRAME, ChangeMix
from bench.ephemeral import Ephemeral
from bench.reads import Readers
from bench.wsclient import LeanSocket, OnText, SocketIOSocket

# Every delivered frame carries "bench:<run tag>:<index>:<send time in perf_counter ns>" in its
# body; the tag tells this run's messages from earlier runs' in the same group.
STAMP = "bench:{tag}:(\\d+):(\\d+)"
MESSAGE_FRAME = '{"type":"message"'
ERROR_FRAME = '{"type":"error"'
# The message service acknowledges each send once stored and published: the sender's view.
ACK_FRAME = '{"type":"ack"'
# The socket.io peers' frames: Socket.IO EVENT packets ("42" + JSON array) and acknowledgements
# ("43" + ack id + JSON array). A send's ack id is its message index; joining the room is id 0.
SIO_MESSAGE_FRAME = '42["message",'
SIO_ACK_FRAME = "43"
SIO_ERROR_ACK = '[{"error"'
SIO_JOINED = "430"
# Handshakes in flight at once while connecting: enough to be quick, few enough for the backlog.
CONNECT_CONCURRENCY = 64
CONNECT_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 15.0
# After the last send, wait this long without a new delivery before giving up on the rest,
# and never longer than DRAIN_CAP_SECONDS in all (an overloaded system is reported, not awaited).
IDLE_GIVE_UP_SECONDS = 5.0
DRAIN_CAP_SECONDS = 60.0
# A fixed created_at, so relay frames are the same size as the message service's frames.
RELAY_CREATED_AT = "2025-01-01T00:00:00.000000Z"


@dataclass
class Target:
    url: str
    token: str | None = None  # None: a bare relay socket (no auth frame, no resume).


@dataclass
class LoadSpec:
    system: str  # What the report calls it: "relay", "letschat", "socketio", "node".
    targets: list[Target]
    senders: int
    messages: int
    rate: float
    conversation_id: str
    compression: bool
    tag: str
    # Resume cursors: where each socket's history starts (a reconnecting client sends its own).
    cursors: dict[str, int] = field(default_factory=dict)
    # Receivers send `read` frames as the web app does (the message service only).
    reads: bool = True
    # Which frames to speak: "relay", "letschat" or "socketio"; empty means `system`'s own.
    protocol: str = ""
    # The mixed workload (the message service only): shares of the messages followed by an
    # edit of an earlier one, and by a reaction to one (bench/changes.py).
    edits: float = 0.0
    reactions: float = 0.0
    # The typing and presence workloads (bench/ephemeral.py; the message service only).
    typing: bool = False
    presence: bool = False

    def __post_init__(self) -> None:
        self.protocol = self.protocol or self.system

    @classmethod
    def load(cls, path: Path) -> LoadSpec:
        raw = json.loads(path.read_text())
        raw["targets"] = [Target(**target) for target in raw["targets"]]
        return cls(**raw)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


@dataclass
class Recorder:
    """Every delivery's latency, counted per message so duplicates and losses show."""

    messages: int
    stamp: re.Pattern[str]
    sent_ns: list[int] = field(default_factory=list)
    received: list[int] = field(init=False)
    latencies_ns: list[int] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # The message of each latency.
    ack_latencies_ns: list[int] = field(default_factory=list)
    frame_bytes: int = 0
    errors: int = 0
    last_delivery_ns: int = 0
    closes: Counter[str] = field(default_factory=Counter)
    changes: ChangeMix | None = None
    ephemeral: Ephemeral | None = None

    def __post_init__(self) -> None:
        self.received = [0] * self.messages

    def on_frame(self, raw: str) -> None:
        """One frame from any of the protocols (their first characters never overlap)."""
        if raw.startswith(MESSAGE_FRAME) or raw.startswith(SIO_MESSAGE_FRAME):
            stamp = self.stamp.search(raw)
            if stamp is None:
                return
            now = time.perf_counter_ns()
            index = int(stamp.group(1))
            self.latencies_ns.append(now - int(stamp.group(2)))
            self.indexes.append(index)
            self.received[index] += 1
            self.frame_bytes += len(raw)
            self.last_delivery_ns = now
        elif raw.startswith(ACK_FRAME):
            stamp = self.stamp.search(raw)
            if stamp is not None:
                self.ack_latencies_ns.append(time.perf_counter_ns() - int(stamp.group(2)))
                if self.changes is not None:
                    self.changes.on_ack(int(stamp.group(1)), raw)
        elif raw.startswith(CHANGE_FRAME):
            if self.changes is not None:
                self.changes.on_change(raw)
        elif raw.startswith(SIO_ACK_FRAME):
            self._on_socketio_ack(raw)
        elif self.ephemeral is not None and self.ephemeral.on_frame(raw):
            pass
        elif raw.startswith(ERROR_FRAME):
            self._on_error(raw)

    def _on_socketio_ack(self, raw: str) -> None:
        start = len(SIO_ACK_FRAME)
        end = raw.find("[", start)
        digits = raw[start:end] if end > start else ""
        if raw.startswith(SIO_ERROR_ACK, end):
            self._on_error(raw)
        elif digits.isdigit() and int(digits) < len(self.sent_ns):
            self.ack_latencies_ns.append(time.perf_counter_ns() - self.sent_ns[int(digits)])

    def _on_error(self, raw: str) -> None:
        self.errors += 1
        if self.errors <= 3:
            print(f"error frame: {raw[:300]}", file=sys.stderr)


async def _open(target: Target, spec: LoadSpec) -> LeanSocket:
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        if spec.protocol == "socketio":
            sio = await SocketIOSocket.connect(target.url, compression=spec.compression)
            sio.send(f'420["join",{json.dumps(spec.conversation_id)}]')
            await sio.expect(SIO_JOINED)
            return sio
        ws = await LeanSocket.open(target.url, compression=spec.compression)
        if target.token is not None:
            ws.send(json.dumps({"type": "auth", "token": target.token}))
            await ws.expect('{"type":"ready"')
            ws.send(json.dumps({"type": "resume", "cursors": spec.cursors}))
            await ws.expect('{"type":"resumed"')
    return ws


async def connect_all(spec: LoadSpec) -> list[LeanSocket]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(target: Target) -> LeanSocket:
        async with gate:
            return await _open(target, spec)

    async with asyncio.timeout(CONNECT_TIMEOUT):
        return list(await asyncio.gather(*(one(target) for target in spec.targets)))


def _close_label(ws: LeanSocket) -> str:
    return str(ws.close_code) if ws.close_code is not None else "1006 (no close frame)"


def _watch_closes(sockets: list[LeanSocket], recorder: Recorder) -> None:
    for ws in sockets:
        ws.closed.add_done_callback(lambda _, ws=ws: recorder.closes.update([_close_label(ws)]))


def _frame(spec: LoadSpec, index: int, sent_ns: int) -> str:
    body = f"bench:{spec.tag}:{index}:{sent_ns}"
    client_msg_id = f"bench-{spec.tag}-{index}"
    if spec.protocol == "socketio":
        send = {
            "conversation_id": spec.conversation_id,
            "client_msg_id": client_msg_id,
            "body": body,
        }
        return f'42{index}["send",{json.dumps(send, separators=(",", ":"))}]'
    if spec.protocol == "letschat":
        return json.dumps(
            {
                "type": "send",
                "conversation_id": spec.conversation_id,
                "client_msg_id": client_msg_id,
                "body": body,
            }
        )
    # Shaped and sized like the message service's `message` frame.
    message = {
        "id": f"{index:032x}",
        "conversation_id": spec.conversation_id,
        "seq": index + 1,
        "sender_id": f"{index % spec.senders:032x}",
        "sender_name": "bench00000",
        "body": body,
        "client_msg_id": client_msg_id,
        "created_at": RELAY_CREATED_AT,
    }
    return json.dumps({"type": "message", "message": message}, separators=(",", ":"))


def _open_sender(senders: list[LeanSocket], index: int) -> LeanSocket | None:
    """Sender `index` round-robin, or the next one still open (a server may close one)."""
    for offset in range(len(senders)):
        sender = senders[(index + offset) % len(senders)]
        if sender.is_open:
            return sender
    return None


async def send_all(spec: LoadSpec, senders: list[LeanSocket], recorder: Recorder) -> None:
    """Send message i at start + i / rate (late ticks are sent at once, not skipped); stop
    early only if every sender's socket was closed."""
    interval_ns = int(1e9 / spec.rate)
    start = time.perf_counter_ns()
    for index in range(spec.messages):
        delay = start + index * interval_ns - time.perf_counter_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        sender = _open_sender(senders, index)
        if sender is None:
            print(f"every sender was closed; sent {index} of {spec.messages}", file=sys.stderr)
            return
        sent_ns = time.perf_counter_ns()
        recorder.sent_ns.append(sent_ns)
        sender.send(_frame(spec, index, sent_ns))
        if recorder.changes is not None:
            recorder.changes.after_send(index, senders)


async def drain(recorder: Recorder, expected: int, clients: int) -> None:
    """Wait for every delivery (of changes too), or until none has arrived for
    IDLE_GIVE_UP_SECONDS."""
    changes = recorder.changes

    def count() -> int:
        return len(recorder.latencies_ns) + (len(changes.latencies_ns) if changes else 0)

    expected += changes.asked * clients if changes else 0
    last_count, last_progress = -1, time.monotonic()
    deadline = last_progress + DRAIN_CAP_SECONDS
    while count() < expected and time.monotonic() < deadline:
        if count() != last_count:
            last_count, last_progress = count(), time.monotonic()
        elif time.monotonic() - last_progress > IDLE_GIVE_UP_SECONDS:
            return
        await asyncio.sleep(0.05)


def _percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index] / 1e6


def medians_by_tenth(recorder: Recorder) -> list[float]:
    """Median latency (ms) of the messages in each tenth of the run: a rising line is a backlog."""
    tenths: list[list[int]] = [[] for _ in range(10)]
    for index, latency in zip(recorder.indexes, recorder.latencies_ns, strict=True):
        tenths[index * 10 // recorder.messages].append(latency)
    return [_percentile(sorted(tenth), 0.5) for tenth in tenths if tenth]


def summarise(spec: LoadSpec, recorder: Recorder, connect_s: float, cpu_s: float) -> dict[str, Any]:
    latencies = sorted(recorder.latencies_ns)
    acks = sorted(recorder.ack_latencies_ns)
    first_send = recorder.sent_ns[0] if recorder.sent_ns else 0
    window_s = max(1e-9, (recorder.last_delivery_ns - first_send) / 1e9)
    send_s = max(1e-9, (recorder.sent_ns[-1] - first_send) / 1e9) if recorder.sent_ns else 0.0
    return {
        "system": spec.system,
        "clients": len(spec.targets),
        "senders": spec.senders,
        "messages": len(recorder.sent_ns),
        "messages_asked": spec.messages,
        "rate": spec.rate,
        "achieved_rate": (len(recorder.sent_ns) - 1) / send_s if send_s else 0.0,
        "expected": len(recorder.sent_ns) * len(spec.targets),
        "deliveries": len(latencies),
        "duplicates": sum(max(0, n - len(spec.targets)) for n in recorder.received),
        "deliveries_per_s": len(latencies) / window_s,
        "window_s": window_s,
        "p50_ms": _percentile(latencies, 0.50),
        "p90_ms": _percentile(latencies, 0.90),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": latencies[-1] / 1e6 if latencies else float("nan"),
        "p50_ms_by_tenth": medians_by_tenth(recorder),
        "acks": len(acks),
        "ack_p50_ms": _percentile(acks, 0.50),
        "ack_p99_ms": _percentile(acks, 0.99),
        "frame_bytes": recorder.frame_bytes / max(1, len(latencies)),
        "errors": recorder.errors,
        "closes_during_run": dict(recorder.closes),
        "connect_s": connect_s,
        "client_cpu_s": cpu_s,
        **_change_figures(spec, recorder),
        **_ephemeral_figures(recorder),
    }


def _ephemeral_figures(recorder: Recorder) -> dict[str, Any]:
    ephemeral = recorder.ephemeral
    if ephemeral is None:
        return {}
    return {
        "typing_sent": ephemeral.typing_sent,
        "presence_sent": ephemeral.presence_sent,
        "typing_deliveries": ephemeral.received["typing"],
        "presence_deliveries": ephemeral.received["presence"],
    }


def _change_figures(spec: LoadSpec, recorder: Recorder) -> dict[str, Any]:
    changes = recorder.changes
    if changes is None:
        return {}
    latencies = sorted(changes.latencies_ns)
    return {
        "workload": "mixed",
        "changes_sent": changes.asked,
        "changes_skipped": changes.skipped,
        "change_deliveries": len(latencies),
        "change_expected": changes.asked * len(spec.targets),
        "change_p50_ms": _percentile(latencies, 0.50),
        "change_p99_ms": _percentile(latencies, 0.99),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _phase(name: str) -> None:
    print(f"phase {name}", flush=True)


def _receiver(recorder: Recorder, readers: Readers | None, index: int) -> OnText:
    if readers is None:
        return recorder.on_frame

    def on_text(raw: str) -> None:
        recorder.on_frame(raw)
        if raw.startswith(MESSAGE_FRAME):
            readers.on_message(index, raw)

    return on_text


async def run(spec: LoadSpec) -> dict[str, Any]:
    started = time.monotonic()
    sockets = await connect_all(spec)
    connect_s = time.monotonic() - started
    recorder = Recorder(spec.messages, re.compile(STAMP.format(tag=re.escape(spec.tag))))
    if spec.protocol == "letschat" and (spec.edits or spec.reactions):
        recorder.changes = ChangeMix(spec.tag, spec.conversation_id, spec.edits, spec.reactions)
    if spec.protocol == "letschat" and (spec.typing or spec.presence):
        recorder.ephemeral = Ephemeral(spec.conversation_id, spec.typing, spec.presence)
    # Only the message service has reads (the relay would broadcast them).
    reading = spec.reads and spec.protocol == "letschat"
    readers = Readers(sockets, spec.conversation_id) if reading else None
    for index, ws in enumerate(sockets):
        ws.on_text = _receiver(recorder, readers, index)
    _watch_closes(sockets, recorder)
    ticker = asyncio.create_task(readers.run()) if readers is not None else None
    try:
        _phase("send")
        cpu_before = _cpu_seconds()
        if recorder.ephemeral is not None:
            recorder.ephemeral.start(sockets[: spec.senders], sockets[spec.senders :])
        await send_all(spec, sockets[: spec.senders], recorder)
        if recorder.ephemeral is not None:
            await recorder.ephemeral.stop()
        await drain(recorder, spec.messages * len(sockets), len(sockets))
        cpu_s = _cpu_seconds() - cpu_before
        _phase("done")
        reads = None if readers is None else readers.sent
        return {**summarise(spec, recorder, connect_s, cpu_s), "reads": reads}
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for ws in sockets:
            ws.on_text = None
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def main() -> None:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = LoadSpec.load(spec_path)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    result_path.write_text(json.dumps(result))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
