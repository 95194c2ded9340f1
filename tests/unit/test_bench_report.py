"""bench.fanout's report of systems measured in rounds: medians, and what a short round does."""

from __future__ import annotations

from bench.report import Result, medians, peer_verdicts, server_cpu_us_per_delivery


def measured(
    system: str, round_: int, per_s: float, p99: float, cpu: float, got: int = 1000
) -> Result:
    return {
        "system": system,
        "rate": 40.0,
        "round": round_,
        "clients": 100,
        "messages": 10,
        "messages_asked": 10,
        "deliveries": got,
        "expected": 1000,
        "deliveries_per_s": per_s,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "cpu_s": {"server": cpu, "load generator": 5.0},
    }


def test_a_system_is_judged_by_the_medians_of_its_rounds() -> None:
    rounds = [
        measured("node", 1, 3900, 40, 0.020),
        measured("letschat", 1, 4000, 300, 0.030),  # A round that met a noisy moment.
        measured("node", 2, 4000, 30, 0.012),
        measured("letschat", 2, 3990, 60, 0.013),
        measured("node", 3, 3950, 35, 0.014),
        measured("letschat", 3, 4000, 70, 0.015),
    ]
    ours, node = medians(rounds)
    assert (ours["system"], node["system"]) == ("letschat", "node")
    assert "round" not in ours
    assert ours["rounds"] == 3
    assert (ours["deliveries_per_s"], ours["p99_ms"]) == (4000, 70)
    assert server_cpu_us_per_delivery(ours) == 15.0  # The middle round's, 15 µs.
    assert server_cpu_us_per_delivery(node) == 14.0
    (verdict,) = peer_verdicts([ours, node])[1:]
    assert "1.01x node's deliveries/s (>= 1x): met" in verdict
    assert "p99 70.0 ms (<= 100): met" in verdict
    assert "server CPU 15 µs/delivery against node's 14: MISSED" in verdict


def test_a_round_that_lost_deliveries_makes_the_median_incomplete() -> None:
    rounds = [
        measured("letschat", 1, 4000, 50, 0.013),
        measured("letschat", 2, 4000, 50, 0.013, got=990),
        measured("letschat", 3, 4000, 50, 0.013),
        measured("node", 1, 3000, 50, 0.013),
    ]
    ours, node = medians(rounds)
    assert ours["deliveries"] == 990
    (verdict,) = peer_verdicts([ours, node])[1:]
    assert "not all delivered" in verdict
    assert ": MISSED" in verdict
