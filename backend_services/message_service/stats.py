"""What the message service counts as frames flow, for `/metrics`.

A delivery happens once per socket and message (a thousand times for one message to a group of
a thousand), so the hot path only adds to plain integers here; they become Prometheus metric
families when scraped (`SocketCollector`). A frame is counted where it is pushed to its socket:
a fan-out's (`Prepared`) in the `Tally` of its kind that it carries, any other by the type its
text starts with.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend_services.message_service.prepared_frames import Tally
from backend_services.metrics import LATENCY_BUCKETS

# Every server frame's JSON text starts so (`frame_text` puts `type` first).
_TYPE_PREFIX = '{"type":"'
# Messages a resume sent for one conversation: a few missed, up to the resume limit (300).
RESUME_BUCKETS = (1, 5, 20, 50, 100, 200, 299, 300)
# What a live fan-out delivers: `letschat_deliveries_total` by feed.
DELIVERED_KINDS = frozenset({"message", "change"})


def frame_type(text: str) -> str:
    """The `type` of a server frame's text, read without parsing it."""
    if not text.startswith(_TYPE_PREFIX):
        return "other"
    end = text.find('"', len(_TYPE_PREFIX))
    return text[len(_TYPE_PREFIX) : end] if end > 0 else "other"


class SocketStats:
    """The counts of one instance's sockets and fan-out."""

    def __init__(self) -> None:
        # Client frames by type ("invalid": not a known frame, "binary": not text).
        self.received: collections.Counter[str] = collections.Counter()
        # Server frames by type, but for those of a fan-out (`Prepared`): these are tallied.
        self.unprepared: collections.Counter[str] = collections.Counter()
        self._tallies: dict[str, Tally] = {}
        # Topics read again from the store after missing a publish, by feed.
        self.backfills: collections.Counter[str] = collections.Counter()
        self.resume_limited = 0  # Conversations a resume sent only the newest messages of.
        self.slow_consumer_closes = 0
        self.broker_disconnects = 0
        self.broker_reconnects = 0
        self.send_ack = Histogram(
            "letschat_send_ack_seconds",
            "From handling a send frame (its turn among the socket's frames) to its ack: "
            "validation, the store's writes, publishing.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.resume_messages = Histogram(
            "letschat_resume_messages",
            "Messages a resume sent for one conversation that had any missed (at the resume "
            "limit, the older ones were left for paging: letschat_resume_limited_total).",
            buckets=RESUME_BUCKETS,
            registry=None,
        )

    def tally(self, kind: str) -> Tally:
        """Where the fan-out's frames of `kind` are counted (`Prepared.tally`)."""
        tally = self._tallies.get(kind)
        if tally is None:
            tally = self._tallies[kind] = Tally()
        return tally

    def pushed(self, text: str) -> None:
        """A frame of no fan-out was pushed to a socket."""
        self.unprepared[frame_type(text)] += 1

    @property
    def sent(self) -> collections.Counter[str]:
        """Server frames pushed to sockets, by type."""
        sent = self.unprepared.copy()
        sent.update({kind: tally.n for kind, tally in self._tallies.items()})
        return sent

    @property
    def deliveries(self) -> collections.Counter[str]:
        """What the live fan-out pushed, by feed (one per socket)."""
        return collections.Counter(
            {kind: tally.n for kind, tally in self._tallies.items() if kind in DELIVERED_KINDS}
        )


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
            "Messages and changes pushed to sockets by the live fan-out, by feed (one per "
            "socket; a socket catching up gets the store's copies, counted as frames sent).",
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
            "letschat_resume_limited",
            "Conversations a socket catching up (a resume, mostly) was sent only the newest "
            "messages of, with a `limited` frame: it missed more than LETSCHAT_RESUME_LIMIT.",
            value=stats.resume_limited,
        )
        yield CounterMetricFamily(
            "letschat_slow_consumer_closes",
            "Sockets closed (4000) for falling too far behind; their clients resume.",
            value=stats.slow_consumer_closes,
        )
        yield CounterMetricFamily(
            "letschat_broker_disconnects",
            "Times the broker connection was lost (not each failed retry while it is).",
            value=stats.broker_disconnects,
        )
        yield CounterMetricFamily(
            "letschat_broker_reconnects",
            "Times the broker connection came back (every followed topic is then backfilled).",
            value=stats.broker_reconnects,
        )
        yield from stats.send_ack.collect()
        yield from stats.resume_messages.collect()


def _by(name: str, documentation: str, label: str, counts: collections.Counter[str]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family
