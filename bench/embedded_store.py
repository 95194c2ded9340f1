"""The embedded store as conversations add up: stock SecantusDB against ours.

Every send takes its seq from a counter document (one per conversation, `conversation_state`)
and every read-marker round updates one document per conversation (`read_markers`), both by
findAndModify. Stock SecantusDB writes a findAndModify's document by scanning its collection;
`backend_services.embedded_mongo` starts it with the write found by `_id` (the module says why
that is safe). One run starts each server fresh and, for each size, fills both collections up
to that many conversations and times, through the project's own `Store`:

- **send**: `MessageStore.append` (the counter and the insert, as a socket's send makes them);
- **read**: `ReadMarkers.advance` (one marker round of one reader).

It prints the median wall time and the server's CPU per operation. Limit: with the repair, a
send at the largest size costs at most 1.5x its cost at the smallest (stock, for comparison,
grows with the size).

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

SERVERS = {"stock": STOCK_SECANTUS, "repaired": EMBEDDED_MONGO}
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

        row.figures["send"] = await timed(pid, operations, send)
        row.figures["read"] = await timed(pid, operations, read)
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
        f"{'server':<9} {'conversations':>13}  {'send ms':>8} {'send CPU ms':>11}"
        f"  {'read ms':>8} {'read CPU ms':>11}"
    )
    for row in rows:
        send, read = row.figures["send"], row.figures["read"]
        print(
            f"{row.server:<9} {row.size:>13,}  {send[0]:>8.2f} {send[1]:>11.2f}"
            f"  {read[0]:>8.2f} {read[1]:>11.2f}"
        )
    cost = {(r.server, r.size): r.figures["send"][1] for r in rows}
    small, large = sizes[0], sizes[-1]
    growth = cost["repaired", large] / cost["repaired", small]
    stock_growth = cost["stock", large] / cost["stock", small]
    met = growth <= LIMIT
    print(
        f"\nsend CPU at {large:,} against {small:,} conversations: repaired {growth:.2f}x "
        f"(limit {LIMIT}x: {'met' if met else 'MISSED'}), stock {stock_growth:.2f}x"
    )
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
