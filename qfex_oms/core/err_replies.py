"""``err`` frames applied: matched to the request they refuse by the exchange's echo of it.

QFEX echoes what it got (``incoming_message``): its ``type`` picks a matcher, its ``params`` name the
order, cancel, modify or TWAP. An ``err`` that matches nothing of ours (a failed query, say) becomes
a ``RequestErrored`` event for the shell. Functions over the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qfex_oms.core import cancelling
from qfex_oms.core.drops import capped
from qfex_oms.core.events import RequestErrored
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

log = get_logger("qfex_oms.core")

Params = dict[str, Any]

# The echoed params a matcher reads: each must be a string (or absent) to name anything of ours.
_ECHOED_IDS = ("symbol", "client_order_id", "order_id", "client_twap_id", "twap_id",
               "cancel_order_id_type")


def on_err(core: OmsCore, e: m.Err) -> None:
    """An ``err`` is matched to its request by the echo. The echo is the exchange's text of
    what it got: a request type or an id that is not a string (a list, an object) names no
    request of ours, so the ``err`` matches nothing; it is logged (capped) and the book is
    left as it was."""
    incoming: Params = e.incoming_message if isinstance(e.incoming_message, dict) else {}
    kind = incoming.get("type")
    raw_params = incoming.get("params")
    params: Params = raw_params if isinstance(raw_params, dict) else {}
    code = str(e.error_code)
    wrong = [name for name in _ECHOED_IDS if params.get(name) is not None
             and not isinstance(params[name], str)]
    if not isinstance(kind, str) and kind is not None:
        wrong.append("type")
        kind = None
    if wrong:
        log.warning("err echoes fields of the wrong type; it matches no request", fields=wrong,
                    error_code=code, incoming=capped(incoming))
        matched = False
    else:
        matched = _MATCHERS.get(kind or "", _match_nothing)(core, params, code)
    if not matched:
        core.emit(RequestErrored(kind, code, e.message, e.incoming_message))


def _add_order(core: OmsCore, params: Params, code: str) -> bool:
    order = core.tracker.first_pending(str(params.get("symbol")), params.get("client_order_id"))
    if order is None:
        return False
    core.apply_order_event(order, OrderEvent.REJECT, code)
    return True


def _cancel(core: OmsCore, params: Params, code: str) -> bool:
    try:
        key = (str(params.get("symbol")), CancelIdType(str(params.get("cancel_order_id_type"))),
               str(params.get("order_id")))
    except ValueError:
        return False
    request = core.cancels.oldest(key)
    if request is None:
        return False
    member = core.tracker.by_order_id(key[2]) if key[1] is CancelIdType.ORDER_ID else None
    if member is not None and key != request.key and member in request.targets:
        # The frame a group cancel sent by id for one member: only that member was refused.
        if member.state is OrderState.PENDING_CANCEL:
            core.apply_order_event(member, OrderEvent.CANCEL_REFUSED, code)
        cancelling.refused(core, request, member, code)
        return True
    cancelling.twap_cancel_answered(request)
    cancelling.refuse_cancel(core, request, code)
    return True


def _modify(core: OmsCore, params: Params, code: str) -> bool:
    request = core.modify_in_flight(str(params.get("order_id")))
    if request is None:
        return False
    request.order.last_status = code
    core.finish_modify(request, code)
    return True


def _add_twap(core: OmsCore, params: Params, code: str) -> bool:
    twap = core.tracker.first_pending_twap(str(params.get("symbol")), params.get("client_twap_id"))
    if twap is None:
        return False
    core.apply_twap_event(twap, TwapEvent.REJECT, code)
    return True


def _match_nothing(core: OmsCore, params: Params, code: str) -> bool:
    return False


_MATCHERS: dict[str, Callable[[OmsCore, Params, str], bool]] = {
    "add_order": _add_order,
    "cancel_order": _cancel,
    "modify_order": _modify,
    "add_twap": _add_twap,
}
