"""Figures a team can watch: counters and latencies of one order manager, and a Prometheus endpoint.

Composed beside the manager, not inside it: ``open_metrics(oms)`` subscribes to ``oms.events()`` in
a task it owns and counts what the events say. The latencies come from the times the core stamps on
each order (``Order.sent_at``, ``acked_at``, ``cancel_sent_at``, ``ended_at``: monotonic seconds
taken as the state moved), not from when this task happened to read the event.

What is counted:
- ``orders_placed``: orders this manager sent that were answered or lost (their first move out of
  PENDING_NEW); ``orders_acked`` those QFEX accepted.
- ``cancels_by_mode``: cancel requests answered, by selector (``order_id``, ``client_order_id``,
  ``twap_id``, ``client_twap_id``).
- ``rejects_by_status``: orders that ended REJECTED, by QFEX's status.
- ``fills`` and ``reconnects`` (a connection back after a disconnect).
- ``place_to_ack``: seconds from sending an order to QFEX accepting it; ``cancel_to_cancelled``:
  from sending a cancel to the order reported CANCELLED. Percentiles over the last
  ``LATENCY_WINDOW`` samples (the Prometheus histograms keep every one).

``port`` given, the same counters and histograms are served at ``http://host:port/metrics`` by
``prometheus_client`` (its own thread; a registry per ``OmsMetrics``, so several can coexist).
"""

from __future__ import annotations

import statistics as stats
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio
from attrs import frozen

from qfex_oms.client.events import Connected, Disconnected
from qfex_oms.core.events import CancelFinished, FillReceived, OrderUpdated
from qfex_oms.core.states import OrderState
from qfex_oms.errors import InvalidArgument
from qfex_oms.logs import get_logger

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager

log = get_logger("qfex_oms.client.metrics")

LATENCY_WINDOW = 10_000
# Histogram buckets (seconds): a loopback simulator answers in under a millisecond, a venue over the
# internet in tens of milliseconds; past 5 s an answer is as good as lost.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PREFIX = "qfex_oms"


@frozen
class Latency:
    """A latency distribution in seconds (None without samples)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, samples: list[float]) -> Latency:
        if not samples:
            return cls(0, None, None, None, None)
        if len(samples) == 1:
            return cls(1, samples[0], samples[0], samples[0], samples[0])
        cuts = stats.quantiles(samples, n=100, method="inclusive")
        return cls(len(samples), cuts[49], cuts[89], cuts[98], max(samples))


@frozen
class OmsStatistics:
    """One manager's figures at one moment (``OmsMetrics.statistics()``); see the module docstring."""

    orders_placed: int
    orders_acked: int
    cancels_by_mode: Mapping[str, int]
    rejects_by_status: Mapping[str, int]
    fills: int
    reconnects: int
    place_to_ack: Latency
    cancel_to_cancelled: Latency


class _Prometheus:
    """The counters and histograms on their own registry, served over HTTP from a thread."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Counter(f"{PREFIX}_orders_placed", "Orders sent and answered (or lost)", registry=r)
        self.cancels = Counter(f"{PREFIX}_cancels", "Cancel requests answered, by selector", ["mode"],
                               registry=r)
        self.rejects = Counter(f"{PREFIX}_rejects", "Orders rejected, by QFEX status", ["status"], registry=r)
        self.fills = Counter(f"{PREFIX}_fills", "Fills received", registry=r)
        self.reconnects = Counter(f"{PREFIX}_reconnects", "Connections back after a disconnect", registry=r)
        self.place_ack = Histogram(f"{PREFIX}_place_ack_seconds", "Order sent to accepted by QFEX",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.cancel_done = Histogram(f"{PREFIX}_cancel_cancelled_seconds", "Cancel sent to order CANCELLED",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self._server: Any = None

    def serve(self, port: int, host: str) -> int:
        """Start the HTTP endpoint; return the port it listens on (``port`` 0 picks one)."""
        from prometheus_client import start_http_server

        try:
            self._server, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise InvalidArgument(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; pick "
                                  "another --metrics-port") from None
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class OmsMetrics:
    """Counts one manager's events; ``statistics()`` reads the figures, ``port`` the endpoint's."""

    def __init__(self, oms: OrderManager, prometheus: bool = False) -> None:
        self.oms = oms
        self.port: int | None = None
        self._placed = self._acked = self._fills = self._reconnects = 0
        self._cancels: Counter[str] = Counter()
        self._rejects: Counter[str] = Counter()
        self._place_ack: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._cancel_done: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._down = not oms.connected
        self.prometheus = _Prometheus() if prometheus else None

    def apply(self, event: object) -> None:
        """Count one event (synchronous: what ``run`` feeds, and what a test may call directly)."""
        p = self.prometheus
        if isinstance(event, OrderUpdated):
            self._order_moved(event)
        elif isinstance(event, FillReceived):
            self._fills += 1
            if p:
                p.fills.inc()
        elif isinstance(event, CancelFinished):
            mode = str(event.request.mode)
            self._cancels[mode] += 1
            if p:
                p.cancels.labels(mode).inc()
        elif isinstance(event, Disconnected):
            self._down = True
        elif isinstance(event, Connected) and self._down:
            self._down = False
            self._reconnects += 1
            if p:
                p.reconnects.inc()

    def _order_moved(self, event: OrderUpdated) -> None:
        order, p = event.order, self.prometheus
        if event.previous is OrderState.PENDING_NEW and order.sent_at is not None:
            self._placed += 1
            if p:
                p.orders.inc()
            if order.acked_at is not None:
                self._acked += 1
                latency = order.acked_at - order.sent_at
                self._place_ack.append(latency)
                if p:
                    p.place_ack.observe(latency)
        if event.state is OrderState.REJECTED and event.previous is not OrderState.REJECTED:
            status = event.status or "UNKNOWN"
            self._rejects[status] += 1
            if p:
                p.rejects.labels(status).inc()
        if event.state is OrderState.CANCELLED and event.previous is OrderState.PENDING_CANCEL and \
                order.cancel_sent_at is not None and order.ended_at is not None:
            latency = order.ended_at - order.cancel_sent_at
            self._cancel_done.append(latency)
            if p:
                p.cancel_done.observe(latency)

    def statistics(self) -> OmsStatistics:
        return OmsStatistics(self._placed, self._acked, dict(self._cancels), dict(self._rejects), self._fills,
                             self._reconnects, Latency.of(list(self._place_ack)),
                             Latency.of(list(self._cancel_done)))

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Count the manager's events until cancelled."""
        with self.oms.events() as stream:
            task_status.started()
            async for event in stream:
                self.apply(event)


@asynccontextmanager
async def open_metrics(oms: OrderManager, *, port: int | None = None,
                       host: str = "127.0.0.1") -> AsyncIterator[OmsMetrics]:
    """Count ``oms``'s events while the block runs; with ``port`` (0: any free one, read it from
    ``metrics.port``), serve them for Prometheus at ``http://host:port/metrics`` too."""
    metrics = OmsMetrics(oms, prometheus=port is not None)
    try:
        if metrics.prometheus is not None and port is not None:
            metrics.port = metrics.prometheus.serve(port, host)
            log.info("metrics endpoint", url=f"http://{host}:{metrics.port}/metrics")
        async with trio.open_nursery() as nursery:
            await nursery.start(metrics.run)
            yield metrics
            nursery.cancel_scope.cancel()
    finally:
        if metrics.prometheus is not None:
            metrics.prometheus.close()


__all__ = ["LATENCY_BUCKETS", "LATENCY_WINDOW", "Latency", "OmsMetrics", "OmsStatistics", "open_metrics"]
