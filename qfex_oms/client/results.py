"""What the manager's calls return: the result of a cancel and the kill switch's report."""

from __future__ import annotations

from attrs import frozen

from qfex_oms.client.outcomes import LOST
from qfex_oms.core.model import CancelRequest, Order, Twap


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

    @property
    def ok(self) -> bool:
        return self.status == "CANCELLED"

    @property
    def owed(self) -> bool:
        """The answer was lost (TIMEOUT, DISCONNECTED, SEND_FAILED) while an order it covers is still
        live: the manager owes the cancel and sends it again after the resync if the order is still
        open (never a quiet OPEN again). ``await oms.wait_ended(*result.targets)`` waits for the end."""
        return self.status in LOST and any(o.state.is_live for o in self.targets)

    @classmethod
    def of(cls, request: CancelRequest) -> CancelResult:
        return cls(request.status or "PENDING", tuple(request.cancelled), str(request.mode),
                   request.value, request.symbol, request.twap, tuple(request.targets))


@frozen
class KillReport:
    """What ``cancel_all()`` achieved. ``clean`` means the exchange's snapshot showed nothing open."""

    cancelled_orders: tuple[Order, ...]
    cancelled_twaps: tuple[Twap, ...]
    still_open: tuple[Order, ...]
    still_open_twaps: tuple[Twap, ...]
    ack_received: bool
    snapshot_checked: bool
    elapsed: float

    @property
    def clean(self) -> bool:
        return self.snapshot_checked and not self.still_open and not self.still_open_twaps
