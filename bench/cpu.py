"""CPU time of the processes in a benchmark, sampled around the measured window.

With two cores shared by the servers, Redis and the load generator, a throughput figure means
little without knowing who was using the CPU; this is how the harness reports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3 of the file, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def redis_cpu_seconds(url: str) -> float:
    """Redis' own CPU seconds (INFO cpu); the instance may be shared with other users."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class CpuWindow:
    """CPU seconds each named process used between `start` and `stop`."""

    pids: Mapping[str, int]
    redis_url: str | None = None
    _before: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    used: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.redis_url is not None:
            sample["redis"] = redis_cpu_seconds(self.redis_url)
        return sample

    def start(self) -> None:
        self._started = time.monotonic()
        self._before = self._sample()

    def stop(self) -> None:
        self.wall_s = time.monotonic() - self._started
        after = self._sample()
        self.used = {name: after[name] - self._before.get(name, 0.0) for name in after}
