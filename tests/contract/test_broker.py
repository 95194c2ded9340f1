"""The broker contract, run against the in-process and the Redis implementation alike."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from backend_services.core.broker import Broker, BrokerDisconnected, Event
from backend_services.core.broker.redis import RedisBroker
from tests.contract.conftest import REDIS_URL
from tests.support.faults import FaultProxy, fault_proxy


async def receive(broker: Broker, timeout: float = 2.0) -> Event:
    async with asyncio.timeout(timeout):
        return await broker.receive()


async def test_a_subscriber_receives_what_is_published(broker: Broker, channel: str) -> None:
    await broker.subscribe(channel + "a")
    await broker.publish(channel + "a", '{"hello": "wörld ✓"}')
    assert await receive(broker) == Event(channel + "a", '{"hello": "wörld ✓"}')


async def test_order_is_kept_within_a_channel(broker: Broker, channel: str) -> None:
    await broker.subscribe(channel)
    for n in range(50):
        await broker.publish(channel, str(n))
    assert [(await receive(broker)).message for _ in range(50)] == [str(n) for n in range(50)]


async def test_only_subscribed_channels_are_received(broker: Broker, channel: str) -> None:
    await broker.subscribe(channel + "yes")
    await broker.publish(channel + "no", "ignored")
    await broker.publish(channel + "yes", "wanted")
    assert (await receive(broker)).message == "wanted"


async def test_unsubscribe_stops_delivery(broker: Broker, channel: str) -> None:
    await broker.subscribe(channel)
    await broker.subscribe(channel + "still")
    await broker.unsubscribe(channel)
    await broker.publish(channel, "late")
    await broker.publish(channel + "still", "marker")
    # Order is kept: had "late" been delivered, it would have come first.
    assert await receive(broker) == Event(channel + "still", "marker")


async def test_ping_answers_while_connected(broker: Broker) -> None:
    await broker.ping()


async def test_after_disconnect_everything_raises_disconnected(
    broker: Broker, channel: str
) -> None:
    await broker.subscribe(channel)
    waiting = asyncio.create_task(broker.receive())
    await asyncio.sleep(0.05)
    await broker.disconnect()
    with pytest.raises(BrokerDisconnected):
        await asyncio.wait_for(waiting, 2)
    with pytest.raises(BrokerDisconnected):
        await broker.publish(channel, "x")
    with pytest.raises(BrokerDisconnected):
        await broker.ping()


async def test_connect_again_starts_afresh(broker: Broker, channel: str) -> None:
    await broker.subscribe(channel + "old")
    await broker.disconnect()
    await broker.connect()
    await broker.subscribe(channel + "new")
    await broker.publish(channel + "old", "forgotten")
    await broker.publish(channel + "new", "fresh")
    assert (await receive(broker)).message == "fresh"


async def test_redis_fans_out_between_instances(channel: str) -> None:
    sender, receiver = RedisBroker(REDIS_URL), RedisBroker(REDIS_URL)
    await sender.connect()
    await receiver.connect()
    try:
        await receiver.subscribe(channel)
        await sender.publish(channel, "across")
        assert (await receive(receiver)).message == "across"
    finally:
        await sender.disconnect()
        await receiver.disconnect()


async def test_an_unreachable_redis_raises_disconnected() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(BrokerDisconnected):
        await broker.connect()
    await broker.disconnect()


def _through(proxy: FaultProxy) -> str:
    upstream = urlsplit(REDIS_URL)
    return REDIS_URL.replace(f":{upstream.port or 6379}/", f":{proxy.port}/")


async def test_a_stalled_redis_fails_commands_within_the_timeout_and_the_listener_notices(
    channel: str,
) -> None:
    upstream = urlsplit(REDIS_URL)
    with fault_proxy(upstream.hostname or "127.0.0.1", upstream.port or 6379) as proxy:
        broker = RedisBroker(_through(proxy), timeout=0.5, echo_seconds=0.5)
        await broker.connect()
        try:
            await broker.subscribe(channel)
            listening = asyncio.create_task(broker.receive())
            await broker.publish(channel, "before")
            assert (await asyncio.wait_for(listening, 2)).message == "before"

            proxy.blackhole()  # Bytes go in; nothing comes back.
            listening = asyncio.create_task(broker.receive())
            for command in (broker.publish(channel, "x"), broker.ping()):
                started = time.monotonic()
                with pytest.raises(BrokerDisconnected):
                    await asyncio.wait_for(command, 5)
                assert time.monotonic() - started < 0.5 + 1.0
            # The listener hears nothing, not even its echo: it says so within echo + timeout.
            with pytest.raises(BrokerDisconnected):
                await asyncio.wait_for(listening, 0.5 + 0.5 + 2.0)

            proxy.heal()  # Connected anew, everything works again.
            await broker.connect()
            await broker.subscribe(channel)
            listening = asyncio.create_task(broker.receive())
            await broker.publish(channel, "after")
            assert (await asyncio.wait_for(listening, 2)).message == "after"
        finally:
            await broker.disconnect()


async def test_an_idle_listener_stays_connected_and_never_returns_its_echo(
    channel: str,
) -> None:
    broker = RedisBroker(REDIS_URL, timeout=0.2, echo_seconds=0.1)
    await broker.connect()
    try:
        await broker.subscribe(channel)
        listening = asyncio.create_task(broker.receive())
        # Echo rounds go by with nothing published: each is heard, none is returned, and the
        # listener, which hears them, does not call itself disconnected.
        for _ in range(100):  # At most 5 s.
            if broker.echoes_heard >= 5 or listening.done():
                break
            await asyncio.sleep(0.05)
        assert broker.echoes_heard >= 5
        assert not listening.done()
        await broker.publish(channel, "finally")
        assert (await asyncio.wait_for(listening, 2)).message == "finally"
    finally:
        await broker.disconnect()
