"""The figures a fan-out run prints: one row per system, then where the CPU went."""

from __future__ import annotations

import argparse
import os
from typing import Any

COLUMNS = (
    ("system", "{:<9}"),
    ("clients", "{:>7}"),
    ("messages", "{:>8}"),
    ("deliveries", "{:>10}"),
    ("deliveries/s", "{:>12}"),
    ("p50 ms", "{:>7}"),
    ("p99 ms", "{:>7}"),
    ("vs relay", "{:>8}"),
)
# The goal the message service is measured against.
TARGET_RATIO = 0.8
TARGET_P99_MS = 100.0


def _row(result: dict[str, Any], relay: dict[str, Any] | None) -> list[str]:
    ratio = "-"
    if relay is not None and relay["deliveries_per_s"] > 0:
        ratio = f"{result['deliveries_per_s'] / relay['deliveries_per_s']:.2f}x"
    return [
        result["system"],
        str(result["clients"]),
        str(result["messages"]),
        f"{result['deliveries']}/{result['expected']}",
        f"{result['deliveries_per_s']:,.0f}",
        f"{result['p50_ms']:.1f}",
        f"{result['p99_ms']:.1f}",
        ratio,
    ]


def _table(results: list[dict[str, Any]]) -> list[str]:
    relay = next((r for r in results if r["system"] == "relay"), None)
    widths = [max(len(name), 9) for name, _ in COLUMNS]
    rows = [[name for name, _ in COLUMNS]] + [_row(r, relay) for r in results]
    widths = [max(w, *(len(row[i]) for row in rows)) for i, w in enumerate(widths)]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _details(result: dict[str, Any]) -> list[str]:
    cpu = result.get("cpu_s", {})
    wall = max(1e-9, result.get("cpu_wall_s", 0.0))
    shares = ", ".join(f"{name} {100 * s / wall:.0f}%" for name, s in sorted(cpu.items()))
    lines = [
        f"{result['system']}: sent {result['messages']} at {result['achieved_rate']:.1f}/s "
        f"(asked {result['rate']:g}/s) from {result['senders']} senders; "
        f"p90 {result['p90_ms']:.1f} ms, max {result['max_ms']:.1f} ms; "
        f"{result['frame_bytes']:.0f} B/frame; window {result['window_s']:.2f} s; "
        f"connect {result['connect_s']:.1f} s",
        f"  CPU over the window (100% = one core of {os.cpu_count()}): {shares}",
    ]
    if result.get("seed_s") is not None:
        lines.append(f"  seeding users + group: {result['seed_s']:.1f} s")
    problems = {
        "duplicates": result["duplicates"],
        "error frames": result["errors"],
        "sockets closed during the run": sum(result["closes_during_run"].values()),
    }
    for name, count in problems.items():
        if count:
            lines.append(f"  ! {name}: {count}")
    if result["closes_during_run"]:
        lines.append(f"  ! close codes: {result['closes_during_run']}")
    for line in result.get("bad_log_lines", []):
        lines.append(f"  ! log: {line}")
    return lines


def _verdict(results: list[dict[str, Any]]) -> str | None:
    by_system = {r["system"]: r for r in results}
    if not {"relay", "letschat"} <= by_system.keys():
        return None
    ours, relay = by_system["letschat"], by_system["relay"]
    ratio = ours["deliveries_per_s"] / max(1e-9, relay["deliveries_per_s"])
    complete = ours["deliveries"] == ours["expected"]
    met = ratio >= TARGET_RATIO and ours["p99_ms"] <= TARGET_P99_MS and complete
    return (
        f"target >= {TARGET_RATIO}x relay at p99 <= {TARGET_P99_MS:.0f} ms, nothing lost: "
        f"{'MET' if met else 'NOT MET'} ({ratio:.2f}x, p99 {ours['p99_ms']:.1f} ms, "
        f"{ours['deliveries']}/{ours['expected']} delivered)"
    )


def print_report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    compression = "permessage-deflate" if args.compression else "no compression"
    print(f"\nGroup fan-out, {compression}, {os.cpu_count()} cores\n")
    print("\n".join(_table(results)))
    print()
    for result in results:
        print("\n".join(_details(result)))
    verdict = _verdict(results)
    if verdict:
        print(f"\n{verdict}")
