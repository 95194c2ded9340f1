"""A bounded soak: 1,000 clients over two message-service instances while instances die and
Redis restarts, counting every message each client sent, got acked, was delivered, got twice or
never got, the RSS of every process and how long reconnecting took.

The run starts its own redis-server, SecantusDB, the auth service and two message-service
instances (all on 127.0.0.1, production settings except the log level). The clients are one
lobby group of everyone plus four teams (client i is in team i % 4), so each client keeps two
per-conversation cursors; each client views its team and reads it as the web app does. A
sender ticks at `--rate` messages/s in total, each tick one client (round-robin over a
shuffled order) sends to its team or, one time in five, to the lobby. Clients behave like the
web app (`letschat_app/state/live.py`, `docs/protocol.md` section 9): on any drop they wait
1 s (doubling to 30 s, +-20% jitter), reconnect to either instance (a load balancer's
random pick; after a refused connect, the other one), send
`auth` and `resume` with their cursors, page over REST whatever a `limited` left out, and
resend every unacked send with its `client_msg_id` after `resumed`. Every `--kill-every`
seconds one instance (alternately) is killed with SIGKILL and restarted; Redis is restarted
once, half way. Then the clients get a final catch-up window, and every client's stream is
checked against the store. Everything it starts is stopped at the end, on Ctrl-C and errors too.

    .venv/bin/python -m bench.soak                                             # the issue's run
    .venv/bin/python -m bench.soak --minutes 2 --clients 200 --kill-every 40   # a short one
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo.errors import PyMongoError
from websockets.exceptions import WebSocketException

from backend_services.core.schemas import MAX_GROUP_MEMBERS
from backend_services.core.store import Store
from bench import seed
from bench.cpu import machine_busy_seconds, process_cpu_seconds
from bench.fanout import work_directory
from bench.reads import ReadPacer
from bench.wsclient import LeanSocket
from tests.support.processes import Process, free_port, start_redis, start_secantus
from tests.support.stack import Stack, running_stack

TEAMS = 4
# One message in five goes to the lobby of everyone, the rest to the sender's team.
LOBBY_SHARE = 0.2
# The web app's reconnect schedule (letschat_app/state/live.py): 1 s doubling to 30 s, +-20%.
BACKOFF_FIRST, BACKOFF_MAX, JITTER = 1.0, 30.0, 0.2
# A connect, `auth` and `ready` on a box busy with a reconnect storm; then `resumed`.
HANDSHAKE_TIMEOUT, RESUME_TIMEOUT = 15.0, 30.0
# Handshakes in flight at once for the first connect (as bench/load.py); reconnects are free.
CONNECT_CONCURRENCY = 64
CONNECT_SECONDS = 120.0
# Codes after which a client must not reconnect with the same token (protocol section 8).
FATAL_CLOSES = range(4500, 5000)
# Send errors the protocol says to resend later with the same client_msg_id.
RETRYABLE = frozenset({"rate_limited", "service_unavailable", "internal_error"})
# "Later": the web app marks such a send failed and the person presses retry, or it goes again
# after the next `resumed`. A person is modelled as pressing retry after 5 s, then after twice
# as long each time, at most a minute; never sooner than the service's `retry_after`. A client
# that retries every second keeps an overloaded store overloaded.
RETRY_FIRST, RETRY_MAX = 5.0, 60.0
# A REST page that failed (a `limited` gap): again after 1 s, doubling, this many times.
PAGE_ATTEMPTS = 8
# Reads held back by the 2 s pacing go out this late at most.
READ_TICK_SECONDS = 0.25
# RSS is read every SAMPLE_SECONDS (and just before each fault). A process's "start" figure is
# taken WARM_SECONDS after the load (or its own share of the sockets) settled; a stretch
# shorter than STABLE_MIN_SECONDS says nothing about growth and is not judged.
SAMPLE_SECONDS, WARM_SECONDS, STABLE_MIN_SECONDS = 5.0, 30.0, 60.0
RSS_GROWTH_LIMIT = 0.10
# Processes whose growth is shown but not held to the limit, and why. SecantusDB keeps every
# document and an hour of oplog in WiredTiger, whose cache (1 GB by default) fills as they
# grow: RSS grows with the writes and stops when they stop, alone as in a soak
# (bench/README.md, "Soak").
NOT_JUDGED = {"load generator": "not a service", "secantusdb": "storage cache filling"}
# After the load: two 15 s sweeps (they repair lost publishes), a reconnect and margin.
FINAL_WINDOW_SECONDS = 90.0
# Seeded sessions and tokens last 30 minutes (bench/seed.py): the run must end before them.
MAX_MINUTES = 20.0
STORE_READ_ATTEMPTS = 5
# At most this many examples of each kind of fault in the report (all are in the JSON).
EXAMPLES = 10

MESSAGE_FRAME, ACK_FRAME, RESUMED_FRAME = '{"type":"message"', '{"type":"ack"', '{"type":"resumed"'
LIMITED_FRAME, ERROR_FRAME, READY_FRAME = '{"type":"limited"', '{"type":"error"', '{"type":"ready"'
RESET_FRAME = '{"type":"reset"'
CONNECT_ERRORS = (OSError, ConnectionError, TimeoutError, RuntimeError, WebSocketException)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=10.0, help="how long the load runs")
    add("--clients", type=int, default=1000, help="clients, alternating over the two instances")
    # 10/s: 2,000 lobby + 2,000 team deliveries a second, which one instance alone holds on
    # this 2-core box while the other restarts (bench/README.md, "Soak").
    add("--rate", type=float, default=10.0, help="messages/s sent in total")
    add("--kill-every", type=float, default=120.0, help="seconds between SIGKILLs")
    add("--reads", action=argparse.BooleanOptionalAction, default=True, help="clients read")
    add(
        "--resume-errors",
        choices=("reconnect", "wait"),
        default="reconnect",
        help="what a client does when `resume` is answered by an error frame: close the socket "
        f"(also after {RESUME_TIMEOUT:.0f} s without `resumed`) and reconnect with backoff "
        "(default), or wait on it for a `resumed` that never comes, as the web app does",
    )
    add("--json", type=Path, help="where to write the results (default: a file in /tmp)")
    add("--seed", type=int, default=10, help="seed of the send schedule")
    add("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not 2 * TEAMS <= args.clients <= MAX_GROUP_MEMBERS:
        parser.error(f"--clients must be between {2 * TEAMS} and {MAX_GROUP_MEMBERS}")
    if not 0 < args.minutes <= MAX_MINUTES or args.rate <= 0 or args.kill_every <= 0:
        parser.error(f"need 0 < --minutes <= {MAX_MINUTES:g}, --rate > 0 and --kill-every > 0")
    return args


class SeqSet:
    """A set of seqs as a bitmap: a client keeps one per conversation and source."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, seq: int) -> bool:
        """Add `seq`; False if it was there already."""
        byte, bit = divmod(seq, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte - len(self._bits) + 64))
        if self._bits[byte] >> bit & 1:
            return False
        self._bits[byte] |= 1 << bit
        return True

    def __contains__(self, seq: int) -> bool:
        byte, bit = divmod(seq, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)


class Histogram:
    """Latencies in ms: 1 ms buckets to 1 s, then 50 ms to 2 min. Constant memory, so the load
    generator's own RSS says something too."""

    def __init__(self) -> None:
        self.counts = [0] * (1000 + 2380 + 1)
        self.total = 0

    def add(self, ms: float) -> None:
        index = int(ms) if ms < 1000 else 1000 + int((ms - 1000) / 50)
        self.counts[max(0, min(index, len(self.counts) - 1))] += 1
        self.total += 1

    def percentile(self, fraction: float) -> float | None:
        if not self.total:
            return None
        rank, seen = fraction * self.total, 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return float(index if index < 1000 else 1000 + 50 * (index - 1000))
        return None


@dataclass(slots=True)
class Stream:
    """One client's view of one conversation."""

    cursor: int = 0  # Protocol rule 1: the highest seq received, from `message` or `ack`.
    framed: SeqSet = field(default_factory=SeqSet)  # From `message` frames and REST pages.
    acked: SeqSet = field(default_factory=SeqSet)  # Its own messages, from `ack` frames.
    framed_max: int = 0
    received: int = 0  # Seqs got at all (framed or acked).
    socket_last: int = 0  # The newest seq on the current socket: must only go up.


@dataclass(slots=True)
class Sent:
    conversation_id: str
    frame: str
    created_ns: int
    attempts: int = 0
    ack_id: str | None = None
    ack_seq: int = 0
    retry_delay: float = RETRY_FIRST


@dataclass
class Reconnect:
    dropped_at: float  # Seconds into the run.
    seconds: float  # From the drop to `resumed` on the new socket.
    close_code: int | None
    attempts: int
    instance: int  # Where it resumed.
    resume_s: float  # Of `seconds`: from sending `resume` to `resumed` (the catch-up).


@dataclass
class Fault:
    kind: str
    target: str
    at: float
    sockets: int
    back_after_s: float = 0.0


async def close_quietly(ws: LeanSocket) -> None:
    """Close `ws` if it is still open: a socket the service is closing refuses a close frame."""
    with contextlib.suppress(WebSocketException, OSError):
        await ws.close()


class ConnectFailed(Exception):
    """A connection attempt that did not reach `resumed`; the message says where it stopped."""


class ResumeRefused(RuntimeError):
    """The service answered `resume` with an error frame."""


class Client:
    """One person's tab: its socket, cursors, pending sends and what it received."""

    def __init__(self, fleet: Fleet, index: int, account: seed.Account, team: str) -> None:
        self.fleet, self.index, self.account, self.team = fleet, index, account, team
        self.instance = index % 2
        self.streams = {fleet.lobby: Stream(), team: Stream()}
        self.sent: dict[str, Sent] = {}
        self.pending: dict[str, None] = {}  # Unacked client_msg_ids, oldest first.
        self.acked = 0
        self.socket: LeanSocket | None = None
        self.live: LeanSocket | None = None  # The socket, once it has sent `resumed`.
        self.resumed: asyncio.Future[None] | None = None
        self.resume_sent_at = 0.0
        self.pacer = ReadPacer()
        self.counts: Counter[str] = Counter()
        # At each resume: conversation -> (cursor sent, highest seq framed until then).
        self.resumes: list[tuple[float, dict[str, tuple[int, int]]]] = []

    # --- sending -------------------------------------------------------------------------

    def new_message(self, conversation_id: str) -> None:
        client_msg_id = f"{self.fleet.tag}-{self.index}-{len(self.sent)}"
        now = time.perf_counter_ns()
        frame = json.dumps(
            {
                "type": "send",
                "conversation_id": conversation_id,
                "client_msg_id": client_msg_id,
                "body": f"soak {client_msg_id} {now}",
            }
        )
        self.sent[client_msg_id] = Sent(conversation_id, frame, now)
        self.pending[client_msg_id] = None
        self._transmit(client_msg_id)  # Or after the next `resumed`, as the web app does.

    def _transmit(self, client_msg_id: str) -> None:
        # As the web app: on any socket that is signed in, before `resumed` too; what is still
        # unacked goes again after `resumed`.
        socket = self.socket
        if socket is None or not socket.is_open:
            return
        sent = self.sent[client_msg_id]
        sent.attempts += 1
        if sent.attempts > 1:
            self.counts["resends"] += 1
        socket.send(sent.frame)

    def _retry(self, client_msg_id: str, socket: LeanSocket) -> None:
        if client_msg_id in self.pending and self.socket is socket:
            self._transmit(client_msg_id)

    # --- receiving -----------------------------------------------------------------------

    def on_text(self, raw: str) -> None:
        if raw.startswith(MESSAGE_FRAME):
            self._on_message(json.loads(raw)["message"])
        elif raw.startswith(ACK_FRAME):
            frame = json.loads(raw)
            self._on_ack(frame["client_msg_id"], frame["message"])
        elif raw.startswith(RESUMED_FRAME):
            self._on_resumed()
        elif raw.startswith(LIMITED_FRAME):
            frame = json.loads(raw)
            self._on_limited(frame["conversation_id"], frame["next_seq"])
        elif raw.startswith(ERROR_FRAME):
            self._on_error(json.loads(raw))
        elif raw.startswith(RESET_FRAME):
            self._on_reset(json.loads(raw)["conversation_id"])

    def _on_reset(self, conversation_id: str) -> None:
        """The service says the cursor counts in another history (protocol section 2): start the
        conversation over. Nothing in a soak restores the store, so any reset is a finding; what
        was received stays counted, and what comes again shows as repeats after resume."""
        stream = self.streams.get(conversation_id)
        self.counts["resets"] += 1
        if stream is not None:
            stream.cursor = stream.socket_last = 0

    def _on_message(self, message: dict[str, Any]) -> None:
        stream = self.streams.get(message["conversation_id"])
        if stream is None:
            self.counts["foreign messages"] += 1
            return
        seq = int(message["seq"])
        same_socket = seq <= stream.socket_last
        stream.socket_last = max(stream.socket_last, seq)
        if not stream.framed.add(seq):
            self.counts["repeats on one socket" if same_socket else "repeats after resume"] += 1
            return
        if same_socket:
            self.counts["out of order on one socket"] += 1
        self.fleet.note_id(message, self.index)
        stream.framed_max = max(stream.framed_max, seq)
        if seq not in stream.acked:
            self._first_receipt(stream, message["body"])
        stream.cursor = max(stream.cursor, seq)
        if self.fleet.reads and message["conversation_id"] == self.team:
            self.fleet.read(self, self.pacer.receive(seq, time.monotonic()))

    def _on_ack(self, client_msg_id: str, message: dict[str, Any]) -> None:
        sent = self.sent.get(client_msg_id)
        stream = self.streams.get(message["conversation_id"])
        if sent is None or stream is None:
            self.counts["acks for nothing sent"] += 1
            return
        seq = int(message["seq"])
        if sent.ack_id is None:
            sent.ack_id, sent.ack_seq = message["id"], seq
            self.acked += 1
            self.fleet.note_ack(message, (time.perf_counter_ns() - sent.created_ns) / 1e6)
        elif sent.ack_id != message["id"]:
            self.counts["acks naming another message"] += 1
        self.pending.pop(client_msg_id, None)
        if stream.acked.add(seq) and seq not in stream.framed:
            self._first_receipt(stream, message["body"])
        # Not the cursor: the stream may not have brought what comes before this seq yet
        # (protocol section 9); the message itself follows as a `message` frame.

    def _first_receipt(self, stream: Stream, body: str) -> None:
        stream.received += 1
        sent_ns = int(body.rpartition(" ")[2])
        self.fleet.note_delivery((time.perf_counter_ns() - sent_ns) / 1e6)

    def _on_resumed(self) -> None:
        self.live = self.socket
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)
        for client_msg_id in list(self.pending):
            self._transmit(client_msg_id)

    def _on_limited(self, conversation_id: str, next_seq: int) -> None:
        stream = self.streams.get(conversation_id)
        self.counts["limited"] += 1
        if stream is not None and next_seq > stream.cursor + 1:
            self.fleet.spawn(self._page(conversation_id, stream.cursor, next_seq))

    async def _page(self, conversation_id: str, after_seq: int, before_seq: int) -> None:
        """What a `limited` left out, over REST (protocol section 2), until it is all here."""
        stream = self.streams[conversation_id]
        headers = {"Authorization": f"Bearer {self.account.token}"}
        delay = 1.0
        for attempt in range(PAGE_ATTEMPTS):
            url = self.fleet.http_urls[(self.instance + attempt) % 2]
            try:
                while after_seq + 1 < before_seq:
                    response = await self.fleet.http.get(
                        f"{url}/conversations/{conversation_id}/messages",
                        params={"after_seq": after_seq, "before_seq": before_seq, "limit": 100},
                        headers=headers,
                    )
                    response.raise_for_status()
                    page = response.json()
                    self.counts["rest pages"] += 1
                    for message in page["messages"]:
                        seq = int(message["seq"])
                        if stream.framed.add(seq) and seq not in stream.acked:
                            stream.framed_max = max(stream.framed_max, seq)
                            self._first_receipt(stream, message["body"])
                    if not page["messages"] or not page["has_more"]:
                        return
                    after_seq = int(page["messages"][-1]["seq"])
                return
            except httpx.HTTPError:
                self.counts["rest pages failed"] += 1
                await asyncio.sleep(delay)
                delay *= 2
        self.counts["rest pages given up"] += 1

    def _on_error(self, frame: dict[str, Any]) -> None:
        code = frame.get("code")
        self.counts[f"error {code} ({frame.get('frame_type')})"] += 1
        if frame.get("frame_type") == "resume" and self.fleet.resume_errors == "reconnect":
            if self.resumed is not None and not self.resumed.done():
                self.resumed.set_exception(ResumeRefused(f"error {code} answering resume"))
            return
        client_msg_id = frame.get("client_msg_id")
        if frame.get("frame_type") != "send" or client_msg_id not in self.pending:
            return
        if code in RETRYABLE and self.socket is not None:
            sent = self.sent[client_msg_id]
            delay = max(float(frame.get("retry_after") or 0), sent.retry_delay)
            sent.retry_delay = min(sent.retry_delay * 2, RETRY_MAX)
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._retry, client_msg_id, self.socket)
        else:
            self.pending.pop(client_msg_id, None)
            self.counts["sends refused"] += 1

    # --- the connection ------------------------------------------------------------------

    async def run(self, gate: asyncio.Semaphore) -> None:
        """Stay connected until the fleet stops: reconnect with backoff and resume."""
        stopping = self.fleet.stopping
        delay, attempts = BACKOFF_FIRST, 0
        dropped_at: float | None = None
        close_code: int | None = None
        first = True
        while not stopping.done():
            attempts += 1
            try:
                if first:
                    async with gate:
                        ws = await self._connect()
                else:
                    ws = await self._connect()
            except ConnectFailed as exc:
                self.counts[f"connect failed: {exc}"] += 1
                self.instance = 1 - self.instance
            else:
                first = False
                if dropped_at is not None:
                    self.fleet.reconnects.append(
                        Reconnect(
                            dropped_at - self.fleet.started,
                            time.monotonic() - dropped_at,
                            close_code,
                            attempts,
                            self.instance,
                            time.monotonic() - self.resume_sent_at,
                        )
                    )
                delay, attempts = BACKOFF_FIRST, 0
                await asyncio.wait({ws.closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():
                    return
                dropped_at, close_code = time.monotonic(), ws.close_code
                self._forget(ws)
                self.counts[f"closed {close_code or '1006'}"] += 1
                if close_code in FATAL_CLOSES:
                    return
                # Through a load balancer: either instance, whichever is up (a refused
                # connect tries the other, above).
                self.instance = self.fleet.balance.randrange(2)
            await asyncio.wait({stopping}, timeout=delay * random.uniform(1 - JITTER, 1 + JITTER))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect(self) -> LeanSocket:
        """Open, `auth`, `resume` with the cursors and wait for `resumed`; ConnectFailed says
        where it stopped."""
        ws: LeanSocket | None = None
        stage = "connected"
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                ws = await LeanSocket.open(self.fleet.ws_urls[self.instance], compression=False)
                ws.send(json.dumps({"type": "auth", "token": self.account.token}))
                stage = "ready"
                await ws.expect(READY_FRAME)
            stage = "resumed"
            self.resumed = asyncio.get_running_loop().create_future()
            for stream in self.streams.values():
                stream.socket_last = 0
            self.socket, ws.on_text = ws, self.on_text
            self.resumes.append(
                (
                    time.monotonic() - self.fleet.started,
                    {cid: (s.cursor, s.framed_max) for cid, s in self.streams.items()},
                )
            )
            cursors = {cid: stream.cursor for cid, stream in self.streams.items()}
            ws.send(json.dumps({"type": "resume", "cursors": cursors}))
            self.resume_sent_at = time.monotonic()
            waits = {self.resumed, ws.closed, self.fleet.stopping}
            if self.fleet.resume_errors == "wait":  # The web app: it waits for as long.
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            else:
                async with asyncio.timeout(RESUME_TIMEOUT):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not self.resumed.done():
                raise ConnectionError("closed")
            self.resumed.result()  # Raises ResumeRefused.
            return ws
        except CONNECT_ERRORS as exc:
            if ws is not None:
                self._forget(ws)
                await close_quietly(ws)
            if isinstance(exc, ConnectionRefusedError):
                reason = "refused"
            elif isinstance(exc, ResumeRefused):
                reason = str(exc)
            else:
                code = "" if ws is None or ws.close_code is None else f" {ws.close_code}"
                kind = "timed out" if isinstance(exc, TimeoutError) else f"closed{code}"
                reason = f"{kind} before {stage}"
            raise ConnectFailed(reason) from exc

    def _forget(self, ws: LeanSocket) -> None:
        ws.on_text = None
        if self.socket is ws:
            self.socket = self.live = None


class Fleet:
    """Every client, the sender, the read ticker and what they saw, on one event loop."""

    def __init__(
        self,
        stack: Stack,
        accounts: list[seed.Account],
        lobby: str,
        teams: list[str],
        *,
        reads: bool,
        resume_errors: str,
        seed: int,
    ) -> None:
        self.balance = random.Random(seed)  # The load balancer's picks.
        self.ws_urls = [service.ws_url for service in stack.messages]
        self.http_urls = [service.url for service in stack.messages]
        self.lobby, self.teams, self.reads = lobby, teams, reads
        self.resume_errors = resume_errors
        self.tag = uuid.uuid4().hex[:6]
        self.http = httpx.AsyncClient(timeout=10)
        self.stopping: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started = time.monotonic()
        self.clients = [
            Client(self, i, account, teams[i % len(teams)]) for i, account in enumerate(accounts)
        ]
        self.tasks: set[asyncio.Task[Any]] = set()
        self.reconnects: list[Reconnect] = []
        self.delivery_ms, self.ack_ms = Histogram(), Histogram()
        self.delivery_ms_by_minute: dict[int, Histogram] = defaultdict(Histogram)
        self.deliveries = 0
        # Conversation -> seq -> the id first seen there, and the acked messages.
        self.ids: dict[str, dict[int, str]] = defaultdict(dict)
        self.acked: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.conflicts: list[dict[str, Any]] = []
        self._read_waiting: set[Client] = set()
        self.harness_errors: list[str] = []

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A task of the load generator that failed makes the run's figures worthless: say so."""
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.harness_errors.append(repr(task.exception()))

    # --- what the clients report ---------------------------------------------------------

    def note_id(self, message: dict[str, Any], client: int) -> None:
        known = self.ids[message["conversation_id"]].setdefault(message["seq"], message["id"])
        if known != message["id"] and len(self.conflicts) < 1000:
            self.conflicts.append({"client": client, "message": message, "first_id": known})

    def note_ack(self, message: dict[str, Any], ms: float) -> None:
        self.ack_ms.add(ms)
        self.acked[message["conversation_id"]][int(message["seq"])] = message

    def note_delivery(self, ms: float) -> None:
        self.deliveries += 1
        self.delivery_ms.add(ms)
        self.delivery_ms_by_minute[int((time.monotonic() - self.started) // 60)].add(ms)

    def read(self, client: Client, seq: int | None) -> None:
        if seq is not None and client.live is not None and client.live.is_open:
            client.live.send(
                json.dumps({"type": "read", "conversation_id": client.team, "seq": seq})
            )
            client.counts["reads"] += 1
        if client.pacer.behind:
            self._read_waiting.add(client)
        else:
            self._read_waiting.discard(client)

    def sockets(self) -> list[int]:
        """Resumed sockets on each instance now."""
        counts = [0, 0]
        for client in self.clients:
            if client.live is not None:
                counts[client.instance] += 1
        return counts

    # --- the load ------------------------------------------------------------------------

    async def connect(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        for client in self.clients:
            self.spawn(client.run(gate))
        deadline = time.monotonic() + CONNECT_SECONDS
        while sum(self.sockets()) < len(self.clients):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.sockets()} of {len(self.clients)} resumed")
            await asyncio.sleep(0.2)
        self.started = time.monotonic()

    async def progress(self) -> None:
        """A line a minute, so a long run shows it is alive."""
        while True:
            await asyncio.sleep(60)
            pending = sum(len(c.pending) for c in self.clients)
            print(
                f"  {time.monotonic() - self.started:6.1f} s  sockets {self.sockets()}, "
                f"{self.deliveries:,} deliveries, {len(self.reconnects)} reconnects, "
                f"{pending} sends pending",
                file=sys.stderr,
                flush=True,
            )

    async def send(self, seconds: float, rate: float, rng: random.Random) -> int:
        """Send at `rate` for `seconds`; return how many messages were sent."""
        order = list(range(len(self.clients)))
        rng.shuffle(order)
        start, count = time.perf_counter(), 0
        while count / rate < seconds:
            delay = start + count / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client = self.clients[order[count % len(order)]]
            client.new_message(self.lobby if rng.random() < LOBBY_SHARE else client.team)
            count += 1
        return count

    async def read_ticker(self) -> None:
        while True:
            await asyncio.sleep(READ_TICK_SECONDS)
            now = time.monotonic()
            for client in list(self._read_waiting):
                self.read(client, client.pacer.due(now))

    def settled(self) -> bool:
        """Every client resumed, nothing pending, and as much received as was acked."""
        acked = {cid: len(messages) for cid, messages in self.acked.items()}
        return all(
            client.live is not None
            and not client.pending
            and all(s.received >= acked.get(cid, 0) for cid, s in client.streams.items())
            for client in self.clients
        )

    async def close(self) -> None:
        if self.stopping.done():
            return
        self.stopping.set_result(None)
        sockets = [c.socket for c in self.clients if c.socket is not None]
        for client in self.clients:
            if client.socket is not None:
                client._forget(client.socket)
        await asyncio.gather(*(close_quietly(ws) for ws in sockets))
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()


# --- the processes and their memory ------------------------------------------------------


class PrivateRedis:
    """This run's own redis-server, restartable on its port."""

    def __init__(self, work: Path) -> None:
        self.work, self.port = work, free_port()
        self.process = start_redis(work, self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        self.process.stop()
        self.process = start_redis(self.work, self.port)

    def stop(self) -> None:
        self.process.stop()


def rss_kb(pid: int) -> int:
    """Resident memory of `pid` alone, in KiB (0 if gone). Not of its descendants: every
    server is a child of this process, and none of them forks."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Sample:
    t: float
    role: str
    pid: int
    rss_kb: int
    cpu_s: float
    sockets: int | None


class Sampler:
    """RSS and CPU of every process in the run, every SAMPLE_SECONDS and on demand."""

    def __init__(
        self, roles: Callable[[], dict[str, int]], sockets: Callable[[], list[int]], t0: float
    ) -> None:
        self.roles, self.sockets, self.t0 = roles, sockets, t0
        self.samples: list[Sample] = []

    def sample(self) -> None:
        t, counts = time.monotonic() - self.t0, self.sockets()
        for role, pid in self.roles().items():
            index = int(role[-1]) - 1 if role.startswith("message") else None
            count = None if index is None else counts[index]
            rss = rss_kb(pid)
            if rss:  # Not a process that just died (a restart under way).
                self.samples.append(Sample(t, role, pid, rss, process_cpu_seconds(pid), count))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_SECONDS)


def _pid(process: Process) -> int:
    assert process.popen is not None
    return int(process.popen.pid)


def memory_rows(samples: list[Sample], clients: int) -> list[dict[str, Any]]:
    """Per process (each restart is a new one): RSS at the start of its last settled stretch
    and at its end, and its growth; judged if it is a service and the stretch was long enough.

    A message instance's share of the sockets changes at every kill of the other one, so its
    stretch starts when its socket count last changed; the others' after the warm-up.
    """
    by_process: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for sample in samples:
        by_process[(sample.role, sample.pid)].append(sample)
    rows = []
    tolerance = max(2, clients // 100)
    for (role, pid), series in by_process.items():
        settled_from = max(WARM_SECONDS, series[0].t + (WARM_SECONDS if series[0].t > 1 else 0))
        if series[-1].sockets is not None:
            final = series[-1].sockets
            stretch = len(series) - 1
            while stretch > 0 and abs((series[stretch - 1].sockets or 0) - final) <= tolerance:
                stretch -= 1
            settled_from = max(settled_from, series[stretch].t + WARM_SECONDS)
        start = next((s for s in series if s.t >= settled_from), series[-1])
        end = series[-1]
        long_enough = end.t - start.t >= STABLE_MIN_SECONDS
        rows.append(
            {
                "process": role,
                "pid": pid,
                "lived_s": [round(series[0].t), round(end.t)],
                "from_s": round(start.t),
                "sockets": [start.sockets, end.sockets],
                "rss_start_mb": start.rss_kb / 1024,
                "rss_end_mb": end.rss_kb / 1024,
                "growth": end.rss_kb / start.rss_kb - 1 if start.rss_kb else 0.0,
                "cpu_s": end.cpu_s - series[0].cpu_s,
                "judged": long_enough and role not in NOT_JUDGED,
                "not_judged": NOT_JUDGED.get(role, "" if long_enough else "stretch too short"),
            }
        )
    return rows


# --- setting up and checking -------------------------------------------------------------


@dataclass
class Setup:
    accounts: list[seed.Account]
    lobby: str
    teams: list[str]
    seconds: float


def seed_groups(stack: Stack, clients: int) -> Setup:
    """Users as bench/seed.py makes them (the first logs in through the auth service), then the
    lobby of all and TEAMS teams, written by the store's own `create_group`: the route's
    hourly allowance of people added (200) is policy for people, not what a soak measures."""
    started = time.monotonic()
    env = stack.env
    url, db = env["LETSCHAT_MONGODB_URL"], env["LETSCHAT_MONGODB_DB"]
    created = asyncio.run(seed.create_users(url, db, clients))
    # Every client's token lasts the seeded 30 minutes; one real login shows the accounts are
    # real, but its access token (10 minutes) would expire during the run.
    accounts = seed.mint_tokens(created, env["LETSCHAT_JWT_SECRET"])
    seed.login(stack.auth_url, accounts[0])

    async def groups() -> list[str]:
        return [
            await seed.create_group_in_store(url, db, accounts[0], accounts[1:]),
            *[
                await seed.create_group_in_store(url, db, accounts[t], accounts[t + TEAMS :: TEAMS])
                for t in range(TEAMS)
            ],
        ]

    lobby, *teams = asyncio.run(groups())
    return Setup(accounts, lobby, teams, time.monotonic() - started)


async def stored_messages(mongo_url: str, db: str, conversation_ids: list[str]) -> dict[str, Any]:
    """Every stored message of these conversations, read with the store's own `read_after`
    (it steps over tombstones and waits for holes, as the sockets do). A store still busy with
    the services' backlog gets a minute per read and a few tries."""
    for _ in range(STORE_READ_ATTEMPTS - 1):
        try:
            return await _read_store(mongo_url, db, conversation_ids)
        except PyMongoError as exc:
            print(f"  reading the store failed ({exc}); again in 10 s", file=sys.stderr)
            await asyncio.sleep(10)
    return await _read_store(mongo_url, db, conversation_ids)


async def _read_store(mongo_url: str, db: str, conversation_ids: list[str]) -> dict[str, Any]:
    store = Store.connect(mongo_url, db, timeout_ms=60_000)
    out: dict[str, Any] = {}
    try:
        for conversation_id in conversation_ids:
            messages, after = [], 0
            while True:
                batch = await store.messages.read_after(conversation_id, after, limit=500)
                messages += [m.model_dump(mode="json") for m in batch.messages]
                if not batch.has_more or batch.through_seq <= after:
                    break
                after = batch.through_seq
            out[conversation_id] = messages
    finally:
        await store.close()
    return out


def _why_lost(client: Client, conversation_id: str, seq: int) -> str:
    for at, cursors in client.resumes:
        cursor, framed_max = cursors.get(conversation_id, (0, 0))
        if framed_max < seq <= cursor:
            return f"resumed at {at:.1f} s from cursor {cursor}, taken from an ack"
    stream = client.streams[conversation_id]
    if seq < stream.framed_max:
        return f"skipped: later seqs were delivered (up to {stream.framed_max})"
    return f"not caught up: newest delivered {stream.framed_max}"


def check(fleet: Fleet, stored: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each client's sent, acked, delivered, duplicated and lost, against the store."""
    stored_seqs = {cid: {int(m["seq"]) for m in messages} for cid, messages in stored.items()}
    copies: dict[str, list[list[int]]] = {}  # Conversation -> seqs of one (sender, id) each.
    for cid, messages in stored.items():
        by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        for m in messages:
            by_key[(m["sender_id"], m["client_msg_id"])].append(int(m["seq"]))
        copies[cid] = [seqs for seqs in by_key.values() if len(seqs) > 1]
    acked_ids = {m["id"] for messages in fleet.acked.values() for m in messages.values()}
    stored_ids = {m["id"]: m for messages in stored.values() for m in messages}
    rows: list[dict[str, Any]] = []
    lost_examples: list[dict[str, Any]] = []
    extra = 0
    for client in fleet.clients:
        delivered = dup = lost = 0
        for cid, stream in client.streams.items():
            expected = stored_seqs[cid] | fleet.acked[cid].keys()
            for seq in expected:
                if seq in stream.framed or seq in stream.acked:
                    delivered += seq in stored_seqs[cid]
                    continue
                lost += 1
                if len(lost_examples) < 1000:
                    lost_examples.append(
                        {
                            "client": client.index,
                            "conversation": cid,
                            "seq": seq,
                            "message": stored_ids.get(fleet.ids[cid].get(seq, ""))
                            or fleet.acked[cid].get(seq),
                            "why": _why_lost(client, cid, seq),
                        }
                    )
            for seqs in copies[cid]:
                dup += max(0, sum(s in stream.framed or s in stream.acked for s in seqs) - 1)
            extra += stream.received - sum(
                1 for seq in stored_seqs[cid] if seq in stream.framed or seq in stream.acked
            )
        rows.append(
            {
                "client": client.index,
                "instance": client.instance + 1,
                "sent": len(client.sent),
                "acked": client.acked,
                "delivered": delivered,
                "duplicated": dup,
                "lost": lost,
                "pending": len(client.pending),
                **dict(client.counts),
            }
        )
    own = {
        cmid: sent
        for client in fleet.clients
        for cmid, sent in client.sent.items()
        if sent.ack_id is None
    }
    stored_cmids = {m["client_msg_id"] for m in stored_ids.values()}
    return {
        "clients": rows,
        "stored": len(stored_ids),
        "acked_not_stored": sorted(acked_ids - stored_ids.keys()),
        "stored_never_acked": sorted(cmid for cmid in own if cmid in stored_cmids),
        "sent_never_stored": sorted(cmid for cmid in own if cmid not in stored_cmids),
        "stored_twice": {cid: seqs for cid, seqs in copies.items() if seqs},
        "seq_conflicts": fleet.conflicts,
        "received_not_stored": extra,
        "lost_examples": lost_examples,
    }


# --- the run -----------------------------------------------------------------------------


def fault_schedule(seconds: float, kill_every: float) -> list[tuple[float, str]]:
    """Kills every `kill_every` s (alternating), and Redis half way (clear of any kill)."""
    kills: list[tuple[float, str]] = []
    at = kill_every
    while at < seconds:
        kills.append((at, f"message{len(kills) % 2 + 1}"))
        at += kill_every
    redis_at = seconds / 2
    if any(abs(redis_at - kill) < 15 for kill, _ in kills):
        redis_at += min(kill_every / 2, 30)
    return sorted([*kills, (redis_at, "redis")])


async def inject_faults(
    fleet: Fleet, stack: Stack, redis: PrivateRedis, sampler: Sampler, seconds: float, every: float
) -> list[Fault]:
    faults: list[Fault] = []
    for at, target in fault_schedule(seconds, every):
        delay = fleet.started + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sampler.sample()  # What each process held just before.
        started = time.monotonic()
        if target == "redis":
            fault = Fault("restart", "redis", started - fleet.started, sum(fleet.sockets()))
            await asyncio.to_thread(redis.restart)
        else:
            victim = stack.messages[int(target[-1]) - 1]
            count = fleet.sockets()[int(target[-1]) - 1]
            fault = Fault("SIGKILL", target, started - fleet.started, count)
            await asyncio.to_thread(victim.kill)
            await asyncio.to_thread(victim.restart)
        fault.back_after_s = time.monotonic() - started
        faults.append(fault)
        print(
            f"  {fault.at:6.1f} s  {fault.kind} {target} ({fault.sockets} sockets on it); "
            f"back in {fault.back_after_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return faults


async def soak(
    args: argparse.Namespace, stack: Stack, setup: Setup, redis: PrivateRedis, secantus: Process
) -> dict[str, Any]:
    seconds = args.minutes * 60
    fleet = Fleet(
        stack,
        setup.accounts,
        setup.lobby,
        setup.teams,
        reads=args.reads,
        resume_errors=args.resume_errors,
        seed=args.seed,
    )
    try:
        # However the system misbehaves, the run ends: connecting, the load, the catch-up window
        # and reading the store back, with room for a slow box.
        async with asyncio.timeout(seconds + FINAL_WINDOW_SECONDS + 600):
            return await _soak(args, stack, setup, redis, secantus, fleet, seconds)
    finally:
        await fleet.close()


async def _soak(
    args: argparse.Namespace,
    stack: Stack,
    setup: Setup,
    redis: PrivateRedis,
    secantus: Process,
    fleet: Fleet,
    seconds: float,
) -> dict[str, Any]:
    await fleet.connect()
    print(f"  {len(fleet.clients)} clients resumed; load starts", file=sys.stderr, flush=True)

    def roles() -> dict[str, int]:
        return {
            **{s.name: _pid(s) for s in stack.messages if s.running},
            "auth": _pid(stack.auth),
            "secantusdb": _pid(secantus),
            "redis": _pid(redis.process),
            "load generator": os.getpid(),
        }

    sampler = Sampler(roles, fleet.sockets, fleet.started)
    fleet.spawn(sampler.run())
    fleet.spawn(fleet.progress())
    if args.reads:
        fleet.spawn(fleet.read_ticker())
    busy_before = machine_busy_seconds()
    faults_task = asyncio.ensure_future(
        inject_faults(fleet, stack, redis, sampler, seconds, args.kill_every)
    )
    fleet.tasks.add(faults_task)
    sent = await fleet.send(seconds, args.rate, random.Random(args.seed))
    load_s = time.monotonic() - fleet.started
    deliveries = fleet.deliveries
    faults = await faults_task
    print(f"  {sent} messages sent; catching up", file=sys.stderr, flush=True)
    window_started = time.monotonic()
    while time.monotonic() - window_started < FINAL_WINDOW_SECONDS:
        if fleet.settled():
            break
        await asyncio.sleep(0.5)
    catch_up_s = time.monotonic() - window_started
    sampler.sample()
    busy = (machine_busy_seconds() - busy_before) / (time.monotonic() - fleet.started)
    settled = fleet.settled()
    # What each client got is complete now; a store that fell behind answers sooner without them.
    await fleet.close()
    env = stack.env
    stored = await stored_messages(
        env["LETSCHAT_MONGODB_URL"], env["LETSCHAT_MONGODB_DB"], [setup.lobby, *setup.teams]
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "shape": {
            "clients": len(fleet.clients),
            "teams": len(setup.teams),
            "team_members": len(fleet.clients) // len(setup.teams),
        },
        "seed_s": setup.seconds,
        "sent": sent,
        "load_s": load_s,
        "deliveries_during_load": deliveries,
        "catch_up_s": catch_up_s,
        "settled": settled,
        "machine_busy_cores": busy,
        "faults": [asdict(f) for f in faults],
        "reconnects": [asdict(r) for r in fleet.reconnects],
        "reconnect_s": _percentiles(sorted(r.seconds for r in fleet.reconnects)),
        "reconnect_resume_s": _percentiles(sorted(r.resume_s for r in fleet.reconnects)),
        "delivery_ms": _histogram(fleet.delivery_ms),
        "delivery_p99_ms_by_minute": {
            m: h.percentile(0.99) for m, h in sorted(fleet.delivery_ms_by_minute.items())
        },
        "ack_ms": _histogram(fleet.ack_ms),
        "memory": memory_rows(sampler.samples, len(fleet.clients)),
        "samples": [asdict(s) for s in sampler.samples],
        "check": check(fleet, stored),
        "bad_log_lines": stack.bad_log_lines()[:50],
        "harness_errors": fleet.harness_errors,
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    def at(fraction: float) -> float | None:
        return values[min(len(values) - 1, int(fraction * len(values)))] if values else None

    return {"count": len(values), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


def _histogram(histogram: Histogram) -> dict[str, float | None]:
    return {
        "count": histogram.total,
        "p50": histogram.percentile(0.5),
        "p99": histogram.percentile(0.99),
    }


# --- the report --------------------------------------------------------------------------


def _spread(rows: list[dict[str, Any]], key: str) -> str:
    values = sorted(int(row.get(key, 0)) for row in rows)
    return (
        f"{sum(values):>9,}  {values[0]:>5}  {values[len(values) // 2]:>6}  {values[-1]:>5}"
        if values
        else "-"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def verdict(result: dict[str, Any]) -> list[str]:
    """What missed the targets: nothing lost, nothing duplicated, RSS growth < 10%."""
    checked = result["check"]
    rows = checked["clients"]
    misses = []
    if result["harness_errors"]:
        misses.append(f"INVALID RUN: {len(result['harness_errors'])} load-generator tasks failed")
    lost = sum(r["lost"] for r in rows) + len(checked["sent_never_stored"])
    if lost:
        misses.append(f"{lost} lost")
    dup = sum(r["duplicated"] for r in rows)
    if dup:
        misses.append(f"{dup} duplicated")
    if checked["seq_conflicts"]:
        misses.append(f"{len(checked['seq_conflicts'])} deliveries naming another message's seq")
    grown = [
        f"{m['process']} (pid {m['pid']}) +{100 * m['growth']:.1f}%"
        for m in result["memory"]
        if m["judged"] and m["growth"] >= RSS_GROWTH_LIMIT
    ]
    misses += [f"RSS of {g}" for g in grown]
    if not result["settled"]:
        misses.append(f"not settled after the {FINAL_WINDOW_SECONDS:.0f} s catch-up window")
    return misses


def print_report(result: dict[str, Any]) -> None:
    shape, checked = result["shape"], result["check"]
    rows = checked["clients"]
    print(
        f"\nSoak {result['date']}: {shape['clients']:,} clients (a lobby of all, "
        f"{shape['teams']} teams of {shape['team_members']}), {result['args']['rate']:g} "
        f"messages/s for {result['load_s']:.0f} s, SIGKILL every "
        f"{result['args']['kill_every']:g} s, reads {'on' if result['args']['reads'] else 'off'}, "
        f"on a resume error: {result['args']['resume_errors']}"
    )
    print(
        f"sent {result['sent']:,} messages; {result['deliveries_during_load']:,} deliveries "
        f"during the load ({result['deliveries_during_load'] / result['load_s']:,.0f}/s); "
        f"machine {100 * result['machine_busy_cores']:.0f}% of one core busy on average; "
        f"caught up in {result['catch_up_s']:.1f} s"
    )
    print("\nfaults (t = seconds into the load):")
    by_fault = _reconnects_by_fault(result)
    for fault, stats in by_fault:
        print(
            f"  {fault['at']:6.1f} s  {fault['kind']:<8} {fault['target']:<9} "
            f"{fault['sockets']:>5} sockets on it, back in {fault['back_after_s']:.1f} s; "
            f"{stats['count']} reconnects p50 {_seconds(stats['p50'])} p99 "
            f"{_seconds(stats['p99'])} max {_seconds(stats['max'])}"
        )
    r, c = result["reconnect_s"], result["reconnect_resume_s"]
    print(
        f"  all      {r['count']} reconnects, drop to resumed: p50 {_seconds(r['p50'])}, "
        f"p99 {_seconds(r['p99'])}, max {_seconds(r['max'])} (of which `resume` to `resumed`: "
        f"p50 {_seconds(c['p50'])}, p99 {_seconds(c['p99'])}, max {_seconds(c['max'])})"
    )
    print(f"\nper client ({len(rows):,}):          total    min  median    max")
    for key in ("sent", "acked", "delivered", "duplicated", "lost", "pending", "resends"):
        print(f"  {key:<22} {_spread(rows, key)}")
    extra_keys = sorted({k for row in rows for k in row} - {"client", "instance"} - set(_BASIC))
    for key in extra_keys:
        print(f"  {key:<22} {_spread(rows, key)}")
    print(
        f"\nstore: {checked['stored']:,} messages; acked but not stored "
        f"{len(checked['acked_not_stored'])}; stored but never acked "
        f"{len(checked['stored_never_acked'])}; sent, never acked nor stored "
        f"{len(checked['sent_never_stored'])}; stored twice "
        f"{sum(len(v) for v in checked['stored_twice'].values())}; seq conflicts "
        f"{len(checked['seq_conflicts'])}; received but not stored {checked['received_not_stored']}"
    )
    for example in checked["lost_examples"][:EXAMPLES]:
        message = example["message"] or {}
        print(
            f"  lost: client {example['client']} {example['conversation'][:8]}… seq "
            f"{example['seq']} ({message.get('client_msg_id', '?')}): {example['why']}"
        )
    d, a = result["delivery_ms"], result["ack_ms"]
    print(
        f"\nlatency, send to first receipt: p50 {d['p50']} ms, p99 {d['p99']} ms "
        f"(acks p50 {a['p50']} ms, p99 {a['p99']} ms); p99 by minute: "
        + ", ".join(f"{v:.0f}" for v in result["delivery_p99_ms_by_minute"].values() if v)
    )
    print("\nRSS (each restart is a new process; start = settled, after warm-up):")
    print("| process | pid | lived s | from s | sockets | RSS start MB | RSS end MB | growth |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in result["memory"]:
        sockets = "-" if m["sockets"][0] is None else f"{m['sockets'][0]}→{m['sockets'][1]}"
        growth = f"{100 * m['growth']:+.1f}%" + (f" ({m['not_judged']})" if m["not_judged"] else "")
        print(
            f"| {m['process']} | {m['pid']} | {m['lived_s'][0]}-{m['lived_s'][1]} | "
            f"{m['from_s']} | {sockets} | {m['rss_start_mb']:.1f} | {m['rss_end_mb']:.1f} | "
            f"{growth} |"
        )
    if result["bad_log_lines"]:
        print(f"\n{len(result['bad_log_lines'])} ERROR log lines, first ones:")
        for line in result["bad_log_lines"][:EXAMPLES]:
            print(f"  {line[:200]}")
    misses = verdict(result)
    target = f"0 lost, 0 duplicated, RSS growth < {100 * RSS_GROWTH_LIMIT:.0f}% per service"
    print(f"\n{'FAIL: ' + '; '.join(misses) if misses else 'PASS'} ({target})")


_BASIC = ("sent", "acked", "delivered", "duplicated", "lost", "pending", "resends")


def _reconnects_by_fault(result: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Each fault with the reconnects of sockets that dropped after it and before the next."""
    faults = result["faults"]
    out = []
    for fault, after in zip(faults, [*faults[1:], None], strict=True):
        until = math.inf if after is None else after["at"]
        seconds = sorted(
            r["seconds"] for r in result["reconnects"] if fault["at"] <= r["dropped_at"] < until
        )
        out.append((fault, _percentiles(seconds)))
    return out


@contextlib.contextmanager
def running_system(work: Path) -> Iterator[tuple[Stack, Process, PrivateRedis]]:
    secantus, mongo_url = start_secantus(work / "secantus", work)
    redis: PrivateRedis | None = None
    try:
        redis = PrivateRedis(work)
        with running_stack(
            mongo_url,
            redis.url,
            work,
            # Production's intervals, not the tests' 0.5 s sweep and 1 s hole grace.
            LETSCHAT_SESSION_SWEEP_SECONDS="15",
            LETSCHAT_SEQ_HOLE_GRACE_SECONDS="2",
            LETSCHAT_LOG_LEVEL="warning",
        ) as stack:
            yield stack, secantus, redis
    finally:
        if redis is not None:
            redis.stop()
        secantus.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed = False
    try:
        with work_directory(lambda: args.keep_logs or failed) as work:
            with running_system(work) as (stack, secantus, redis):
                print(f"seeding {args.clients} users and {1 + TEAMS} groups", file=sys.stderr)
                setup = seed_groups(stack, args.clients)
                print(f"  {setup.seconds:.1f} s; connecting", file=sys.stderr, flush=True)
                try:
                    import uvloop
                except ImportError:
                    result = asyncio.run(soak(args, stack, setup, redis, secantus))
                else:
                    result = uvloop.run(soak(args, stack, setup, redis, secantus))
            failed = bool(verdict(result))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.json or Path(tempfile.gettempdir()) / f"letschat-soak-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    print_report(result)
    print(f"(results in {path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
