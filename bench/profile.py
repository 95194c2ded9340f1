"""py-spy over a process tree for one measured window, and the frames that took the most time.

py-spy samples from outside without pausing the target (`--nonblocking`), so the profile costs
the servers nothing; its own CPU shows under "others". It is optional: `pip install py-spy`.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Samples per second: enough for a minute-long window, little CPU for py-spy itself.
RATE = 100


class Profile:
    """`py-spy record` of `pid` and its Python children, from `start` to `stop`."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid, self.output = pid, output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [binary, "record", "--pid", str(self.pid), "--subprocesses", "--nonblocking"]
        command += ["--rate", str(RATE), "--format", "raw", "--output", str(self.output)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        """End the recording; py-spy writes its file on SIGINT."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks by function, without py-spy's process and thread frames."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        # Functions, not lines: "f (a/b.py:12)" -> "f (a/b.py)".
        stack = tuple(
            re.sub(r":\d+\)$", ")", f)
            for f in frames.split(";")
            if not f.startswith(("process ", "thread ("))
        )
        stacks[stack or (NATIVE,)] += int(count)
    return stacks


NATIVE = "(no Python frame: native code, e.g. the server's own threads)"
# Frames worth seeing with their callees: the app's and Reflex's state handling.
INTERESTING = ("letschat_app/", "reflex/istate/", "reflex/state.py", "reflex/app.py")


def _package(frame: str) -> str:
    """'f (reflex/istate/proxy.py)' -> 'reflex'; 'f (threading.py)' -> 'threading'."""
    where = frame.rpartition("(")[2].rstrip(")")
    return where.split("/", 1)[0].split(".py", 1)[0] if "(" in frame else frame


def summary(path: Path, top: int = 12) -> list[str]:
    """Where the samples were: by package and function (own time), and the app's and Reflex's
    state-handling frames including what they call."""
    if not path.exists():
        return [f"no profile written to {path}"]
    stacks = _stacks(path)  # py-spy leaves out threads waiting (an idle event loop)
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        packages[_package(stack[-1])] += count
        for frame in set(stack):
            if any(mark in frame for mark in INTERESTING):
                inclusive[frame] += count

    def share(pairs: list[tuple[str, int]]) -> list[str]:
        return [f"    {100 * n / total:5.1f}%  {name}" for name, n in pairs]

    lines = [f"py-spy of the Reflex backend: {total} busy samples at {RATE}/s ({path})"]
    lines += ["  own time by package:", *share(packages.most_common(top))]
    lines += ["  own time by function:", *share(own.most_common(top))]
    lines += ["  app and Reflex state frames, with callees:", *share(inclusive.most_common(top))]
    return lines
