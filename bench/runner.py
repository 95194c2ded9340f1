"""Runs the load generator as its own process and samples CPU over its measured window."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.cpu import CpuWindow
from bench.load import LoadSpec

# Connecting 1,000 sockets on a busy box, plus the drain give-up, plus margin.
FIXED_ALLOWANCE_S = 180.0


def run_load(spec: LoadSpec, work: Path, cpu: CpuWindow) -> dict[str, Any]:
    """Run `bench.load` for `spec`; return its summary plus the CPU each process used."""
    name = f"{spec.system}-{spec.tag}"
    spec_path, result_path, log_path = (
        work / f"{name}-spec.json",
        work / f"{name}-result.json",
        work / f"{name}-load.log",
    )
    spec.dump(spec_path)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.load", str(spec_path), str(result_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    # However the load generator misbehaves, it is killed after this long.
    watchdog = threading.Timer(FIXED_ALLOWANCE_S + 3 * spec.messages / spec.rate, process.kill)
    watchdog.start()
    try:
        cpu.pids = {**cpu.pids, "load generator": process.pid}
        _follow_phases(process, cpu)
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0 or not result_path.exists():
        raise RuntimeError(f"load generator failed (exit {code}); see {log_path}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["cpu_s"], result["cpu_wall_s"] = cpu.used, cpu.wall_s
    return result


def _follow_phases(process: subprocess.Popen[str], cpu: CpuWindow) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "phase send":
            cpu.start()
        elif line.strip() == "phase done":
            cpu.stop()
