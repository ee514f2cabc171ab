"""``qfex-oms gateway``: one QFEX connection per account, shared by local clients that speak QFEX's
own trade protocol (issue 18, across processes). See ``server.py`` for the shape of it.

Ordinary keys
    A client's ids go to QFEX as ``<strategy>:<its id>`` and come back without the prefix; it sees
    only its own orders, TWAPs, stops and fills (reports, snapshots, trades), cancels only its own
    (by id: another's "does not exist", ``NO_SUCH_ORDER``; by client id: inside its namespace), and
    its ``cancel_all_orders`` and cancel-on-disconnect cover only its own. Positions and balances
    are the account's, for every client.

The operator's key (``may_kill_account = true``)
    The key that may pull the account-wide kill switch is the operator's, and sees the account as
    a direct QFEX connection would, so ``qfex-oms orders --by-strategy`` and ``qfex-oms kill
    --strategy NAME`` work through the gateway as they do against QFEX:

    - snapshots (``get_user_orders``, ``get_order``, ``get_user_trades``) and every order, fill,
      TWAP and stop report of the account reach it, other strategies' ids with their ``<strategy>:``
      prefix, orders outside every namespace (placed around the gateway, TWAP children) as QFEX
      names them;
    - it may cancel any live order, TWAP or stop by its exchange id (one the gateway's book does not
      know yet goes to QFEX, which answers); a cancel by a client id that carries a namespace
      (``mm:bid-1``) goes out as it is, so it ends exactly that strategy's orders sharing the id,
      and one without goes into the operator's own namespace;
    - ``cancel_all_orders`` is QFEX's, account-wide (the manager's kill switch, its halt lifted
      once it reported); ``close_position`` and ``set_user_leverage`` are allowed;
    - what it places is its own strategy's, as for any key, and comes back with its own ids; such
      an id may not itself look namespaced (``mm:x`` is refused, ``INVALID_ORDER``), or its order
      would pass for mm's in its view; it modifies only its own orders and stops; its
      cancel-on-disconnect covers only its own.

    ``kill --strategy mm`` through the operator's key: the CLI's manager learns the account from the
    snapshot, picks mm's orders by their ``mm:`` namespace and cancels them by order id, or by a
    client id only mm's orders share (``core.cancel``): nothing of another strategy, nothing
    outside every namespace. Through an ordinary key the same command finds nothing of mm (that
    key's view holds its own orders only, under its own ids) and sends no cancel: ``kill`` without
    ``--strategy`` is an ordinary key's own kill switch.

Tokens
    A client may authenticate with a JWT instead of its secret, where QFEX takes one (``?jwt=`` or
    ``Authorization: Bearer`` on the upgrade, ``{"auth": {"jwt": ...}}``). QFEX's own tokens cannot
    be checked here, so the gateway takes only its own: ``qfex-oms gateway token --key PUB`` mints
    one for a configured key (``tokens.py``), and the client is then that key in every respect.
"""

from qfex_oms.gateway.config import ClientKey, GatewayConfig, GatewayConfigError, load_gateway, parse_gateway
from qfex_oms.gateway.server import Gateway, open_gateway

__all__ = ["ClientKey", "Gateway", "GatewayConfig", "GatewayConfigError", "load_gateway", "open_gateway",
           "parse_gateway"]
