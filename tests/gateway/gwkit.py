"""What the gateway tests share: client keys, a gateway in front of a simulator, clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from simkit import CREDS, OPTIONS

from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.gateway import ClientKey, Gateway, GatewayConfig, open_gateway
from qfex_oms.sim import Venue

MM = ClientKey("gw_pub_mm", "gw_secret_mm", "mm")
ARB = ClientKey("gw_pub_arb", "gw_secret_arb", "arb")
HEDGE = ClientKey("gw_pub_hedge", "gw_secret_hedge", "hedge")
OPS = ClientKey("gw_pub_ops", "gw_secret_ops", "ops", may_kill_account=True)
KEYS = (MM, ARB, HEDGE, OPS)
CONFIG = GatewayConfig(KEYS, port=0)


def creds(key: ClientKey) -> Credentials:
    return Credentials(key.public_key, key.secret)


@asynccontextmanager
async def gateway_on(venue: Venue, config: GatewayConfig = CONFIG, **options: Any) -> AsyncIterator[Gateway]:
    async with open_gateway(venue.url, CREDS, config, **{**OPTIONS, "rest_url": venue.rest_url,
                                                         **options}) as gw:
        yield gw


@asynccontextmanager
async def client(gw: Gateway | str, key: ClientKey, **options: Any) -> AsyncIterator[OrderManager]:
    url = gw if isinstance(gw, str) else gw.url
    async with open_order_manager(url, creds(key), **{**OPTIONS, **options}) as oms:
        yield oms
