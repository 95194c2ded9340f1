"""The figures a fan-out run prints: one row per system and rate, where the CPU went, and the
targets judged from the run's own figures."""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from bench.cpu import MACHINE
from bench.peers import PEERS

Result = dict[str, Any]

HEADER = (
    "system",
    "rate/s",
    "clients",
    "messages",
    "deliveries",
    "deliveries/s",
    "vs relay",
    "p50 ms",
    "p99 ms",
    "server CPU µs/delivery",
    "store req/msg",
)
# The goal the message service is measured against, at the same offered load as the relay.
TARGET_RATIO = 0.8
TARGET_P99_MS = 100.0
# Issue 11's goals against the peers: at least the Node peer's deliveries/s at every rate in
# this range, p99 within TARGET_P99_MS up to PEER_P99_UP_TO, at least twice python-socketio's
# deliveries/s at SOCKETIO_RATE, and no more server CPU per delivery than the Node peer.
PEER_RATES = (10.0, 60.0)
PEER_P99_UP_TO = 40.0
NODE_RATIO = 1.0
SOCKETIO_RATE, SOCKETIO_RATIO = 40.0, 2.0
# Every system a run can measure, in the table's order.
SYSTEMS = ("relay", "letschat", *PEERS)
# CpuWindow entries that are not the system under test (Redis and SecantusDB are).
NOT_SERVER = {MACHINE, "others", "load generator"}
# Above this share of all cores used by processes not under test, figures are pessimistic.
NOISY_OTHERS = 0.25


def _at(
    results: list[Result], system: str, rate: float, round_: int | None = None
) -> Result | None:
    return next(
        (
            r
            for r in results
            if r["system"] == system and r["rate"] == rate and r.get("round") == round_
        ),
        None,
    )


def _relay_at(results: list[Result], rate: float, round_: int | None = None) -> Result | None:
    return _at(results, "relay", rate, round_)


def _ratio(result: Result, relay: Result | None) -> float | None:
    if relay is None or relay["deliveries_per_s"] <= 0:
        return None
    return float(result["deliveries_per_s"] / relay["deliveries_per_s"])


def server_cpu_us_per_delivery(result: Result) -> float | None:
    """CPU the system under test spent per delivery: steadier than throughput on a busy box."""
    cpu = result.get("cpu_s", {})
    server = sum(s for name, s in cpu.items() if name not in NOT_SERVER)
    # A workload's changes and notices are delivered too (and cost their share).
    deliveries = result["deliveries"] + result.get("change_deliveries", 0)
    deliveries += result.get("typing_deliveries", 0) + result.get("presence_deliveries", 0)
    return 1e6 * server / deliveries if deliveries else None


def server_cpu_seconds(result: Result) -> float:
    return float(sum(s for name, s in result.get("cpu_s", {}).items() if name not in NOT_SERVER))


def store_requests_per_message(result: Result) -> float | None:
    """Requests the system's store served per message sent (serverStatus opcounters)."""
    requests = result.get("store_requests")
    if requests is None or not result["messages"]:
        return None
    return float(sum(requests.values()) / result["messages"])


def _row(result: Result, relay: Result | None) -> list[str]:
    ratio = _ratio(result, relay)
    cost = server_cpu_us_per_delivery(result)
    requests = store_requests_per_message(result)
    label = result["system"] + (f" #{result['round']}" if "round" in result else "")
    return [
        label,
        f"{result['rate']:g}",
        str(result["clients"]),
        str(result["messages"]),
        f"{result['deliveries']}/{result['expected']}",
        f"{result['deliveries_per_s']:,.0f}",
        "-" if ratio is None else f"{ratio:.2f}x",
        f"{result['p50_ms']:.1f}",
        f"{result['p99_ms']:.1f}",
        "-" if cost is None else f"{cost:.0f}",
        "-" if requests is None else f"{requests:.2f}",
    ]


def table(results: list[Result]) -> list[str]:
    rows = [list(HEADER)] + [
        _row(r, _relay_at(results, r["rate"], r.get("round"))) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _cpu_line(result: Result) -> str:
    cpu = result.get("cpu_s", {})
    wall = max(1e-9, result.get("cpu_wall_s", 0.0))
    parts = sorted((name, s) for name, s in cpu.items() if name not in {MACHINE, "others"})
    parts.append(("others", cpu.get("others", 0.0)))
    shares = " + ".join(f"{name} {100 * s / wall:.0f}%" for name, s in parts)
    busy = 100 * cpu.get(MACHINE, 0.0) / wall
    line = f"  CPU (100% = one core of {os.cpu_count()}): busy {busy:.0f}% = {shares}"
    if cpu.get("others", 0.0) / wall > NOISY_OTHERS * (os.cpu_count() or 1):
        line += "\n  ! other jobs used much of the CPU meanwhile: these figures are pessimistic"
    return line


def _problems(result: Result) -> list[str]:
    lines = []
    closes = result["closes_during_run"]
    counts = {
        "duplicate deliveries": result["duplicates"],
        "error frames": result["errors"],
        f"sockets closed during the run {closes}": sum(closes.values()),
    }
    lines += [f"  ! {name}: {count}" for name, count in counts.items() if count]
    lines += [f"  ! log: {line}" for line in result.get("bad_log_lines", [])]
    return lines


def details(result: Result) -> list[str]:
    tenths = " ".join(f"{ms:.0f}" for ms in result["p50_ms_by_tenth"])
    lines = [
        f"{result['system']} at {result['rate']:g}/s: sent {result['messages']} of "
        f"{result['messages_asked']} at "
        f"{result['achieved_rate']:.1f}/s from {result['senders']} senders; p90 "
        f"{result['p90_ms']:.1f} ms, max {result['max_ms']:.1f} ms; {result['frame_bytes']:.0f} "
        f"B/frame; window {result['window_s']:.2f} s; connecting took {result['connect_s']:.1f} s",
        _cpu_line(result),
        f"  p50 ms by tenth of the messages (rising = falling behind): {tenths}",
    ]
    if "change_deliveries" in result:
        lines.append(
            f"  changes (edits and reactions): {result['changes_sent']} sent "
            f"({result['changes_skipped']} skipped: message not acknowledged yet), "
            f"{result['change_deliveries']}/{result['change_expected']} delivered, "
            f"p50 {result['change_p50_ms']:.1f} ms, p99 {result['change_p99_ms']:.1f} ms"
        )
    if "typing_sent" in result:
        lines.append(
            f"  typing frames sent {result['typing_sent']}, notices delivered "
            f"{result['typing_deliveries']}; presence changes sent {result['presence_sent']}, "
            f"notices delivered {result['presence_deliveries']}"
        )
    if result["acks"]:
        lines.append(
            f"  acks (stored and published, seen by the sender): {result['acks']}, "
            f"p50 {result['ack_p50_ms']:.1f} ms, p99 {result['ack_p99_ms']:.1f} ms"
        )
    if requests := result.get("store_requests"):
        per = ", ".join(
            f"{kind} {n / max(1, result['messages']):.2f}"
            for kind, n in sorted(requests.items())
            if n
        )
        lines.append(
            f"  store requests per message: {per or 'none'} "
            "(command: drivers' hellos and this count's serverStatus too)"
        )
    if result.get("reads") is not None:
        lines.append(
            f"  reads sent by the receivers (paced as the web app paces them): {result['reads']}, "
            f"{result['reads'] / max(1e-9, result['window_s']):.0f}/s"
        )
    if result.get("seed_s") is not None:
        lines.append(f"  users + group (group via {result['group_via']}): {result['seed_s']:.1f} s")
    return lines + _problems(result)


def _complete(result: Result) -> bool:
    return bool(
        result["deliveries"] == result["expected"]
        and result["messages"] == result["messages_asked"]
    )


def verdicts(results: list[Result]) -> list[str]:
    lines = []
    for ours in (r for r in results if r["system"] == "letschat"):
        ratio = _ratio(ours, _relay_at(results, ours["rate"]))
        if ratio is None:
            continue
        complete = _complete(ours)
        met = ratio >= TARGET_RATIO and ours["p99_ms"] <= TARGET_P99_MS and complete
        lines.append(
            f"at {ours['rate']:g}/s: {'MET' if met else 'NOT MET'} ({ratio:.2f}x the relay, "
            f"p99 {ours['p99_ms']:.1f} ms, {ours['deliveries']}/{ours['expected']} delivered)"
        )
    if lines:
        lines.insert(0, f"target: >= {TARGET_RATIO}x the relay at p99 <= {TARGET_P99_MS:g} ms")
    return lines


def _judged(met: bool) -> str:
    return "met" if met else "MISSED"


def _against(ours: Result, peer: Result, at_least: float) -> tuple[str, bool]:
    """Our deliveries/s over the peer's, as printed (two decimals), and whether it reaches
    `at_least` with nothing of ours lost."""
    ratio = round(ours["deliveries_per_s"] / max(1e-9, peer["deliveries_per_s"]), 2)
    met = ratio >= at_least and _complete(ours)
    lost = "" if _complete(ours) else ", not all delivered"
    return f"{ratio:.2f}x {peer['system']}'s deliveries/s{lost} (>= {at_least:g}x)", met


def peer_verdicts(results: list[Result]) -> list[str]:
    """Issue 11's targets, judged per rate from this run's figures."""
    lines = []
    low, high = PEER_RATES
    for ours in (r for r in results if r["system"] == "letschat"):
        rate = ours["rate"]
        checks: list[tuple[str, bool]] = []
        node = _at(results, "node", rate)
        if node is not None and low <= rate <= high:
            checks.append(_against(ours, node, NODE_RATIO))
        if rate <= PEER_P99_UP_TO:
            p99 = ours["p99_ms"]
            checks.append((f"p99 {p99:.1f} ms (<= {TARGET_P99_MS:g})", p99 <= TARGET_P99_MS))
        socketio = _at(results, "socketio", rate)
        if socketio is not None and rate == SOCKETIO_RATE:
            checks.append(_against(ours, socketio, SOCKETIO_RATIO))
        ours_cpu = server_cpu_us_per_delivery(ours)
        node_cpu = None if node is None else server_cpu_us_per_delivery(node)
        if ours_cpu is not None and node_cpu is not None:
            text = f"server CPU {ours_cpu:.0f} µs/delivery against node's {node_cpu:.0f}"
            checks.append((text, round(ours_cpu) <= round(node_cpu)))
        if checks:
            judged = "; ".join(f"{text}: {_judged(met)}" for text, met in checks)
            lines.append(f"  at {rate:g}/s: {judged}")
    if lines:
        lines.insert(
            0,
            f"targets against the peers (Let's Chat >= {NODE_RATIO:g}x node's deliveries/s from "
            f"{low:g} to {high:g}/s, p99 <= {TARGET_P99_MS:g} ms up to {PEER_P99_UP_TO:g}/s, "
            f">= {SOCKETIO_RATIO:g}x socketio's at {SOCKETIO_RATE:g}/s, server CPU per delivery "
            "<= node's; figures as printed):",
        )
    return lines


def ephemeral_costs(results: list[Result]) -> list[str]:
    """What typing and presence traffic cost: the server CPU of a run with it over the plain
    run at the same rate (the same messages), and per notice delivered."""
    lines = []
    for extra in (r for r in results if r["system"] in {"letschat typing", "letschat presence"}):
        plain = _at(results, "letschat", extra["rate"])
        if plain is None:
            continue
        kind = extra["system"].split()[-1]
        with_it, without = server_cpu_seconds(extra), server_cpu_seconds(plain)
        notices = extra.get(f"{kind}_deliveries", 0)
        share = (with_it - without) / with_it if with_it else 0.0
        per = 1e6 * (with_it - without) / notices if notices else float("nan")
        lines.append(
            f"  {kind} at {extra['rate']:g}/s: server CPU {with_it:.2f} s against {without:.2f} s "
            f"without: {100 * share:.0f}% of the server's CPU went to it "
            f"({notices} notices delivered, {per:.1f} µs each)"
        )
    if lines:
        lines.insert(0, "typing and presence traffic (against the plain run at the same rate):")
    return lines


def median_result(rounds: list[Result]) -> Result:
    """One system at one rate measured in rounds: the middle round by server CPU per delivery
    (its CPU split, store requests and details), with the median deliveries/s, p50 and p99 of
    all rounds; not complete if any round was not."""
    by_cost = sorted(rounds, key=lambda r: server_cpu_us_per_delivery(r) or 0.0)
    median = {key: value for key, value in by_cost[len(by_cost) // 2].items() if key != "round"}
    for key in ("deliveries_per_s", "p50_ms", "p99_ms"):
        median[key] = statistics.median(r[key] for r in rounds)
    short = [r for r in rounds if not _complete(r)]
    if short:
        median.update({key: short[0][key] for key in ("deliveries", "expected", "messages")})
    median["rounds"] = len(rounds)
    return median


def medians(results: list[Result]) -> list[Result]:
    """Per system and rate, `median_result` of its rounds, in the table's order."""
    groups: dict[tuple[str, float], list[Result]] = {}
    for result in results:
        groups.setdefault((result["system"], result["rate"]), []).append(result)

    def place(key: tuple[str, float]) -> tuple[int, str, float]:
        system, rate = key
        known = system in SYSTEMS
        return (SYSTEMS.index(system) if known else len(SYSTEMS), system, rate)

    return [median_result(groups[key]) for key in sorted(groups, key=place)]


def print_report(results: list[Result], failures: list[str], args: argparse.Namespace) -> None:
    compression = "permessage-deflate" if args.compression else "no compression"
    print(f"\nGroup fan-out ({compression}, {os.cpu_count()} cores)\n")
    for failure in failures:
        print(f"! FAILED: {failure}")
    if any("round" in result for result in results):
        print("Each round (the systems took turns, a round at a time):")
        print("\n".join(table(results)))
        results = medians(results)
        print(f"\nMedians of {args.rounds} rounds (judged below):")
    print("\n".join(table(results)))
    for result in results:
        print()
        print("\n".join(details(result)))
    for lines in (verdicts(results), peer_verdicts(results), ephemeral_costs(results)):
        if lines:
            print()
            print("\n".join(lines))
