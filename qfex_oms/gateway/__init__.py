"""``qfex-oms gateway``: one QFEX connection per account, shared by local clients that speak QFEX's
own trade protocol (issue 18, across processes). See ``server.py`` for the shape of it."""

from qfex_oms.gateway.config import ClientKey, GatewayConfig, GatewayConfigError, load_gateway, parse_gateway
from qfex_oms.gateway.server import Gateway, open_gateway

__all__ = ["ClientKey", "Gateway", "GatewayConfig", "GatewayConfigError", "load_gateway", "open_gateway",
           "parse_gateway"]
