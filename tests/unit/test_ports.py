"""Test servers listen on ports no outgoing connection can be given meanwhile."""

from __future__ import annotations

from tests.support.processes import ephemeral_ports, free_port


def test_free_ports_are_outside_the_range_outgoing_connections_take_theirs_from() -> None:
    low, high = ephemeral_ports()
    ports = [free_port() for _ in range(50)]
    assert not [port for port in ports if low <= port <= high]
    assert len(set(ports)) == len(ports)  # Never the same one twice.
