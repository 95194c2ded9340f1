"""CPU time of the processes in a benchmark, sampled around the measured window.

With two cores shared by the servers, Redis and the load generator, a throughput figure means
little without knowing who was using the CPU; this is how the harness reports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pymongo
import redis

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The key under which `CpuWindow.used` reports every core's busy time, ours or not.
MACHINE = "machine"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3 of the file, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of the children it has reaped)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None:
            # After the command name: ppid is field 4 of the file, utime..cstime fields 14-17.
            table[int(entry)] = (int(fields[1]), sum(map(int, fields[11:15])) / CLOCK_TICKS)
    return table


def _tree(pid: int, table: Mapping[int, tuple[int, float]]) -> set[int]:
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in table.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return tree & table.keys()


def tree_pids(pid: int) -> set[int]:
    """`pid` and all its living descendants."""
    return _tree(pid, _process_table())


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and all its descendants, including children they have reaped.

    Counting each process's reaped children (cutime, cstime) as well as its own time keeps the
    sum steady when a worker exits: its time moves into its parent's, not out of the tree.
    """
    table = _process_table()
    return sum(table[member][1] for member in _tree(pid, table))


def child_pids(pid: int) -> list[int]:
    """The living direct children of `pid`."""
    return [child for child, (parent, _) in _process_table().items() if parent == pid]


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle, machine-wide (from /proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / CLOCK_TICKS


def redis_cpu_seconds(url: str) -> float:
    """Redis' own CPU seconds (INFO cpu); the instance may be shared with other users."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def store_requests(url: str) -> dict[str, int]:
    """Requests the MongoDB server has served so far, by kind (serverStatus opcounters)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000
    )
    try:
        counters = client.admin.command("serverStatus")["opcounters"]
    finally:
        client.close()
    return {kind: int(count) for kind, count in counters.items()}


@dataclass
class CpuWindow:
    """CPU seconds each named process used between `start` and `stop` (and, given a MongoDB
    URL, the requests its server served meanwhile: `requests`)."""

    pids: Mapping[str, int]
    redis_url: str | None = None
    mongo_url: str | None = None
    # Processes counted with all their descendants (servers that fork workers, a browser).
    trees: Mapping[str, int] = field(default_factory=dict)
    _before: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    used: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    _requests_before: dict[str, int] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        sample = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        sample |= {name: tree_cpu_seconds(pid) for name, pid in self.trees.items()}
        if self.redis_url is not None:
            sample["redis"] = redis_cpu_seconds(self.redis_url)
        sample[MACHINE] = machine_busy_seconds()
        return sample

    def start(self) -> None:
        if self.mongo_url is not None:
            self._requests_before = store_requests(self.mongo_url)
        self._started = time.monotonic()
        self._before = self._sample()

    def stop(self) -> None:
        self.wall_s = time.monotonic() - self._started
        after = self._sample()
        if self.mongo_url is not None:
            counts = store_requests(self.mongo_url)
            self.requests = {k: n - self._requests_before.get(k, 0) for k, n in counts.items()}
        self.used = {name: after[name] - self._before.get(name, 0.0) for name in after}
        ours = sum(seconds for name, seconds in self.used.items() if name != MACHINE)
        # Whatever else ran on the box meanwhile (other jobs, the kernel's share of loopback).
        self.used["others"] = max(0.0, self.used[MACHINE] - ours)


def wait_for_quiet(max_wait_s: float, busy_below: float = 0.25) -> float:
    """Wait (at most `max_wait_s`) for a second in which the machine is mostly idle; return the
    busy fraction of all cores seen last. Other jobs on a shared box skew every figure."""
    deadline = time.monotonic() + max_wait_s
    cores = os.cpu_count() or 1
    while True:
        before, started = machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = (machine_busy_seconds() - before) / (cores * (time.monotonic() - started))
        if busy < busy_below or time.monotonic() >= deadline:
            return busy
