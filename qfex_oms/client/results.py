"""What the manager's calls return: the result of a cancel and the kill switch's report."""

from __future__ import annotations

from attrs import frozen

from qfex_oms.client.outcomes import LOST
from qfex_oms.core.model import CancelRequest, Order, Twap
from qfex_oms.core.stops import StopOrder


@frozen
class CancelResult:
    """``status`` is QFEX's answer (CANCELLED, NO_SUCH_ORDER, REJECTED, RateLimited, ...) or a local one:
    ALREADY_CLOSED (nothing to cancel, nothing sent), TIMEOUT or DISCONNECTED (orders left UNKNOWN for
    resync to settle), SEND_FAILED."""

    status: str
    cancelled: tuple[Order, ...]
    mode: str
    value: str
    symbol: str
    twap: Twap | None = None
    targets: tuple[Order, ...] = ()  # every order the cancel covered, whatever became of it
    stop: StopOrder | None = None  # a stop order's cancel (mode "stop_order_id")

    @property
    def ok(self) -> bool:
        return self.status == "CANCELLED"

    @property
    def owed(self) -> bool:
        """The answer was lost (TIMEOUT, DISCONNECTED, SEND_FAILED) while an order it covers is still
        live: the manager owes the cancel and sends it again after the resync if the order is still
        open (never a quiet OPEN again). ``await oms.wait_ended(*result.targets)`` waits for the end."""
        if self.stop is not None:
            return self.status in LOST and self.stop.state.is_live
        return self.status in LOST and any(o.state.is_live for o in self.targets)

    @classmethod
    def of(cls, request: CancelRequest) -> CancelResult:
        return cls(request.status or "PENDING", tuple(request.cancelled), str(request.mode),
                   request.value, request.symbol, request.twap, tuple(request.targets))

    @classmethod
    def of_stop(cls, stop: StopOrder, status: str) -> CancelResult:
        """A ``cancel_stop_order``'s result: QFEX's status (CANCELLED, NO_SUCH_ORDER, a refusal) or a
        local one (ALREADY_CLOSED, TIMEOUT, DISCONNECTED, ...). A stop that fired before the cancel
        landed is ``stop.state`` TRIGGERED (``stop.order`` is the order it became), whatever the status."""
        return cls(status, (), "stop_order_id", stop.stop_order_id or "", stop.symbol, stop=stop)


@frozen
class KillReport:
    """What ``cancel_all()`` achieved. ``clean`` means the exchange's snapshot showed nothing that
    can still trade: no open order, no running TWAP and no staged stop order (a stop left behind
    becomes a market order when the mark reaches it)."""

    cancelled_orders: tuple[Order, ...]
    cancelled_twaps: tuple[Twap, ...]
    still_open: tuple[Order, ...]
    still_open_twaps: tuple[Twap, ...]
    ack_received: bool
    snapshot_checked: bool
    elapsed: float
    cancelled_stops: tuple[StopOrder, ...] = ()
    still_open_stops: tuple[StopOrder, ...] = ()

    @property
    def clean(self) -> bool:
        return (self.snapshot_checked and not self.still_open and not self.still_open_twaps
                and not self.still_open_stops)
