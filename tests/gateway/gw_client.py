"""A client process for the gateway tests: an unmodified ``open_order_manager`` at the gateway's URL.

``python gw_client.py URL PUBLIC_KEY SECRET [--cod]`` then commands on stdin, one per line; each
answer is one JSON line on stdout: ``place SYMBOL SIDE QTY PRICE CLIENT_ID``, ``cancel_cid SYMBOL
CLIENT_ID``, ``cancel_all``, ``orders``, ``flood N SYMBOL`` (N cancels by unknown client ids).
The first line is ``{"ready": true}`` once connected.
"""

from __future__ import annotations

import sys

import orjson
import trio

from qfex_oms import Credentials, open_order_manager


def say(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


async def main(url: str, public_key: str, secret: str, cod: bool) -> None:
    async with open_order_manager(url, Credentials(public_key, secret), cancel_on_disconnect=cod,
                                  request_timeout=5.0, handshake_timeout=5.0) as oms:
        say({"ready": True})
        stdin = trio.wrap_file(sys.stdin)
        async for line in stdin:
            words = line.split()
            if not words:
                continue
            cmd, rest = words[0], words[1:]
            if cmd == "place":
                symbol, side, qty, price, cid = rest
                order = await oms.place_order(symbol, side, qty, price, client_order_id=cid)
                say({"order_id": order.order_id, "client_order_id": order.client_order_id})
            elif cmd == "cancel_cid":
                result = await oms.cancel(client_order_id=rest[1], symbol=rest[0])
                say({"status": result.status, "cancelled": [o.order_id for o in result.cancelled]})
            elif cmd == "cancel_all":
                report = await oms.cancel_all()
                oms.resume()
                say({"clean": report.clean, "cancelled": [o.order_id for o in report.cancelled_orders]})
            elif cmd == "orders":
                say({"orders": sorted(o.order_id for o in oms.orders())})
            elif cmd == "quit":
                return


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], "--cod" in sys.argv[4:])
