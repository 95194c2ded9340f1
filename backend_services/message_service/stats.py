"""What the message service counts as frames flow, for `/metrics`.

A delivery happens once per socket and message (a thousand times for one message to a group of
a thousand), so the hot path only adds to plain integers here; they become Prometheus metric
families when scraped (`SocketCollector`). Frames sent are counted where each is pushed to a
socket, except the fan-out's (messages and changes), which the hub counts per message for every
socket it hands them to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend_services.metrics import LATENCY_BUCKETS

# Every server frame's JSON text starts so (`frame_text` puts `type` first).
_TYPE_PREFIX = '{"type":"'
# Messages a socket was sent on resume: from nothing missed to the resume limit and past it.
RESUME_BUCKETS = (0, 1, 5, 20, 50, 100, 300, 1000, 3000)


def frame_type(text: str) -> str:
    """The `type` of a server frame's text, read without parsing it."""
    if not text.startswith(_TYPE_PREFIX):
        return "other"
    end = text.find('"', len(_TYPE_PREFIX))
    return text[len(_TYPE_PREFIX) : end] if end > 0 else "other"


class SocketStats:
    """The counts of one instance's sockets and fan-out."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()  # Client frames by type ("invalid", "binary").
        self.sent: Counter[str] = Counter()  # Server frames by type.
        self.deliveries: Counter[str] = Counter()  # Live fan-out to sockets, by feed.
        self.backfills: Counter[str] = Counter()  # Topics read again from the store, by feed.
        self.slow_consumer_closes = 0
        self.broker_disconnects = 0
        self.broker_reconnects = 0
        self.send_ack = Histogram(
            "letschat_send_ack_seconds",
            "From a send frame's handling to its ack: validation, the store's writes, publishing.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.resume_messages = Histogram(
            "letschat_resume_messages",
            "Messages a socket was sent by one resume, over all its conversations.",
            buckets=RESUME_BUCKETS,
            registry=None,
        )

    def pushed(self, text: str) -> None:
        self.sent[frame_type(text)] += 1

    def fanned_out(self, feed: str, sockets: int) -> None:
        self.sent[feed] += sockets
        self.deliveries[feed] += sockets


class SocketCollector(Collector):
    """`SocketStats` and the hub's present state as metric families, when scraped."""

    def __init__(
        self, stats: SocketStats, sockets: Callable[[], int], subscriptions: Callable[[], int]
    ) -> None:
        self._stats = stats
        self._sockets = sockets
        self._subscriptions = subscriptions

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield GaugeMetricFamily(
            "letschat_ws_connections", "Authenticated sockets open.", value=self._sockets()
        )
        yield GaugeMetricFamily(
            "letschat_broker_subscriptions",
            "Broker channels this instance listens on (its users' and their conversations').",
            value=self._subscriptions(),
        )
        yield _by(
            "letschat_ws_frames_received",
            "Client frames read, by type (invalid: not a known frame; binary: not text).",
            "type",
            stats.received,
        )
        yield _by("letschat_ws_frames_sent", "Server frames sent, by type.", "type", stats.sent)
        yield _by(
            "letschat_deliveries",
            "Messages and changes handed to sockets live, by feed (one per socket).",
            "feed",
            stats.deliveries,
        )
        yield _by(
            "letschat_backfills",
            "Conversations this instance read again from the store after missing a publish "
            "(a gap, a broker reconnect, the sweep), by feed.",
            "feed",
            stats.backfills,
        )
        yield CounterMetricFamily(
            "letschat_slow_consumer_closes",
            "Sockets closed (4000) for falling too far behind; their clients resume.",
            value=stats.slow_consumer_closes,
        )
        yield CounterMetricFamily(
            "letschat_broker_disconnects",
            "Times the broker connection was lost.",
            value=stats.broker_disconnects,
        )
        yield CounterMetricFamily(
            "letschat_broker_reconnects",
            "Times the broker connection came back (every followed topic is then backfilled).",
            value=stats.broker_reconnects,
        )
        yield from stats.send_ack.collect()
        yield from stats.resume_messages.collect()


def _by(name: str, documentation: str, label: str, counts: Counter[str]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family
