"""The embedded store as conversations add up: stock SecantusDB against ours.

Every send takes its seq from a counter document (one per conversation, `conversation_state`)
and every read-marker round updates one document per conversation (`read_markers`), both by
findAndModify. Stock SecantusDB writes a findAndModify's document by scanning its collection;
`backend_services.embedded_mongo` starts it with the write found by `_id` (the module says why
that is safe). One run starts each server fresh and, for each size, fills both collections up
to that many conversations and times, through the project's own `Store`:

- **send**: `MessageStore.append` (the counter and the insert, as a socket's send makes them);
- **read**: `ReadMarkers.advance` (one marker round of one reader);
- **round**: `ReadMarkers.advance_many` of 125 readers of a 1,000-member group (the round an
  instance writes for a busy group, every 2 s).

Three servers: stock (`secantusd-py`), repaired (the repair alone, keeping SecantusDB's oplog),
and embedded (`python -m backend_services.embedded_mongo`: the repair, standalone, no oplog).
It prints the median wall time and the server's CPU per operation. Limits: on the embedded
store, a send at the largest size costs at most 1.5x its cost at the smallest (stock, for
comparison, grows with the size), and a send and a round cost no more than with the oplog.

    .venv/bin/python -m bench.embedded_store                       # 10, 300, 1000, 3000
    .venv/bin/python -m bench.embedded_store --sizes 10,1000 --operations 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from backend_services.core.store import Store
from backend_services.core.store.database import stored_now
from bench.cpu import process_cpu_seconds
from bench.fanout import work_directory
from tests.support.processes import EMBEDDED_MONGO, STOCK_SECANTUS, start_secantus

# The repair alone: SecantusDB as it runs by default (a one-member replica set, with an oplog).
REPAIR_ONLY = (
    sys.executable,
    "-c",
    "import sys; from backend_services import embedded_mongo; embedded_mongo.install(); "
    "from secantus.cli import main; sys.exit(main(sys.argv[1:]))",
)
SERVERS = {"stock": STOCK_SECANTUS, "repaired": REPAIR_ONLY, "embedded": EMBEDDED_MONGO}
KINDS = ("send", "read", "round")
GROUP_READERS, ROUND_READERS = 1000, 125
LIMIT = 1.5
FILL_BATCH = 500


@dataclass
class Row:
    server: str
    size: int
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)  # ms wall, ms CPU


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,300,1000,3000", help="conversations, ascending")
    parser.add_argument("--operations", type=int, default=50, help="timed per size and kind")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if args.sizes != sorted(args.sizes) or not all(1 <= s <= 20_000 for s in args.sizes):
        parser.error("--sizes: ascending, each 1-20000")
    if not 5 <= args.operations <= 1000:
        parser.error("--operations: 5-1000")
    return args


async def timed(
    pid: int, operations: int, operation: Callable[[int], Awaitable[object]]
) -> tuple[float, float]:
    """Median wall ms and mean server CPU ms of `operations` runs of `operation`, one at a time."""
    walls = []
    cpu_before = process_cpu_seconds(pid)
    for i in range(operations):
        start = time.perf_counter()
        await operation(i)
        walls.append((time.perf_counter() - start) * 1000)
    cpu = (process_cpu_seconds(pid) - cpu_before) * 1000 / operations
    return statistics.median(walls), cpu


async def measure(name: str, url: str, pid: int, sizes: list[int], operations: int) -> list[Row]:
    store = Store.connect(url, f"bench_{uuid.uuid4().hex[:8]}")
    await store.prepare()
    db = store.database.db
    sender = await store.users.create("sender", "-", "Sender")
    reader = await store.users.create("reader", "-", "Reader")
    group = await store.conversations.create_group(
        sender.id, "measured", [reader.id], is_public=False
    )
    conversation_id = group["_id"]
    await store.reads.advance(conversation_id, reader.id, 0)
    # A busy group's markers, in a conversation of their own (the measured one keeps one).
    busy = f"busy-{uuid.uuid4().hex[:8]}"
    readers = [uuid.uuid4().hex for _ in range(GROUP_READERS)]
    await store.reads.advance_many([(busy, user_id, 1) for user_id in readers])
    rows, have = [], 1
    for size in sizes:
        # Other conversations' counters and markers, as many as the size says, in bulk: what
        # makes a findAndModify slow is how many documents share its collection.
        now = stored_now()
        for start in range(have, size, FILL_BATCH):
            ids = [f"other-{i}" for i in range(start, min(size, start + FILL_BATCH))]
            await db["conversation_state"].insert_many(
                [{"_id": i, "last_seq": 0, "last_activity_at": now} for i in ids]
            )
            await db["read_markers"].insert_many([{"_id": i, "u": {reader.id: 0}} for i in ids])
        have = max(have, size)
        row = Row(name, size)
        base = size * operations

        async def send(i: int, base: int = base) -> object:
            return await store.messages.append(
                conversation_id, sender, f"message {base + i}", uuid.uuid4().hex, known_member=True
            )

        async def read(i: int, base: int = base) -> object:
            return await store.reads.advance(conversation_id, reader.id, base + i + 1)

        async def round_(i: int, base: int = base) -> object:
            start = (i * ROUND_READERS) % GROUP_READERS
            marks = readers[start : start + ROUND_READERS]
            return await store.reads.advance_many([(busy, u, base + i + 2) for u in marks])

        row.figures["send"] = await timed(pid, operations, send)
        row.figures["read"] = await timed(pid, operations, read)
        row.figures["round"] = await timed(pid, operations, round_)
        rows.append(row)
        print(f"  {name} at {size}: done", file=sys.stderr, flush=True)
    await store.close()
    return rows


async def run(args: argparse.Namespace) -> int:
    rows: list[Row] = []
    with work_directory(lambda: False) as directory:
        for name, command in SERVERS.items():
            (directory / name).mkdir()
            process, url = start_secantus(directory / name, directory, command=command)
            try:
                assert process.popen is not None
                pid = process.popen.pid
                rows += await measure(name, url, pid, args.sizes, args.operations)
            finally:
                process.stop()
    return report(rows, args.sizes)


def report(rows: list[Row], sizes: list[int]) -> int:
    print(
        f"{'server':<9} {'conversations':>13}"
        + "".join(f"  {kind + ' ms':>9} {kind + ' CPU ms':>12}" for kind in KINDS)
    )
    for row in rows:
        print(
            f"{row.server:<9} {row.size:>13,}"
            + "".join(
                f"  {row.figures[kind][0]:>9.2f} {row.figures[kind][1]:>12.2f}" for kind in KINDS
            )
        )
    cost = {(r.server, r.size, kind): r.figures[kind][1] for r in rows for kind in KINDS}
    small, large = sizes[0], sizes[-1]
    growth = cost["embedded", large, "send"] / cost["embedded", small, "send"]
    stock_growth = cost["stock", large, "send"] / cost["stock", small, "send"]
    met = growth <= LIMIT
    print(
        f"\nsend CPU at {large:,} against {small:,} conversations: embedded {growth:.2f}x "
        f"(limit {LIMIT}x: {'met' if met else 'MISSED'}), stock {stock_growth:.2f}x"
    )
    for kind in ("send", "round"):
        # Over every size, so that one noisy size does not decide it.
        embedded = sum(cost["embedded", size, kind] for size in sizes)
        oplog = sum(cost["repaired", size, kind] for size in sizes)
        ratio = embedded / oplog
        print(
            f"{kind} CPU without the oplog against with it: {ratio:.2f}x "
            f"(limit 1.0x: {'met' if ratio <= 1.0 else 'MISSED'})"
        )
        met = met and ratio <= 1.0
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
