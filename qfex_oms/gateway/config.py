"""The ``[gateway]`` table of a config file: where the gateway listens and whose keys it accepts.

```toml
[gateway]
host = "127.0.0.1"          # beyond loopback only with certfile/keyfile (TLS)
port = 8766                 # 0 picks a free one
# certfile = "gateway.pem"
# keyfile = "gateway.key"

[[gateway.client]]
public_key = "gw_pub_mm"
secret_env = "GW_SECRET_MM"  # the secret comes from this environment variable, never the file
strategy = "mm"              # namespace of its client ids on the wire: "mm:<its id>"
may_kill_account = false     # true: the operator's key: sees and may cancel the whole account
```

Parsed here from the same TOML file as the rest of the config (the app's loader reads the other
tables), strictly: unknown keys, wrong types, duplicate keys or strategy names are errors naming the
dotted key. The upstream (QFEX) URL and keys are the ``[exchange]`` table's, as for every command.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from qfex_oms.errors import InvalidArgument
from qfex_oms.gateway.namespace import valid_strategy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class GatewayConfigError(InvalidArgument):
    """A problem in the ``[gateway]`` table (exit code 2 from the CLI, as every config error)."""


@frozen
class ClientKey:
    public_key: str
    secret: str
    strategy: str
    may_kill_account: bool = False


@frozen
class GatewayConfig:
    clients: tuple[ClientKey, ...]
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    certfile: str | None = None
    keyfile: str | None = None

    def key(self, public_key: str) -> ClientKey | None:
        return next((c for c in self.clients if c.public_key == public_key), None)

    @property
    def tls(self) -> bool:
        return self.certfile is not None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def check_listen(config: GatewayConfig) -> None:
    """Refuse to listen beyond loopback in clear text: the gateway trades for whoever connects."""
    if (config.certfile is None) != (config.keyfile is None):
        raise GatewayConfigError("gateway: give both certfile and keyfile, or neither")
    if not is_loopback(config.host) and not config.tls:
        raise GatewayConfigError(
            f"gateway.host {config.host!r} is beyond loopback: listening there needs TLS "
            "(--certfile/--keyfile, or gateway.certfile/gateway.keyfile)")


_TOP = {"host": str, "port": int, "certfile": str, "keyfile": str, "client": list}
_CLIENT = {"public_key": str, "secret_env": str, "strategy": str, "may_kill_account": bool}
_REQUIRED = ("public_key", "secret_env", "strategy")


def _typed(where: str, table: Mapping[str, Any], spec: Mapping[str, type]) -> None:
    for key, value in table.items():
        if key not in spec:
            raise GatewayConfigError(f"unknown key {where}.{key} (known: {', '.join(spec)})")
        kind = spec[key]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise GatewayConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")


def _client(n: int, table: Any, environ: Mapping[str, str]) -> ClientKey:
    where = f"gateway.client[{n}]"
    if not isinstance(table, dict):
        raise GatewayConfigError(f"{where}: expected a [[gateway.client]] table")
    _typed(where, table, _CLIENT)
    for key in _REQUIRED:
        if key not in table:
            raise GatewayConfigError(f"missing key {where}.{key}")
    if not valid_strategy(table["strategy"]):
        raise GatewayConfigError(f"{where}.strategy: expected 1-16 letters, digits, _ or -, not "
                                 f"'twap' (QFEX's TWAP children), got {table['strategy']!r}")
    secret = environ.get(table["secret_env"])
    if not secret:
        raise GatewayConfigError(f"{where}.secret_env: the environment variable "
                                 f"{table['secret_env']} is unset or empty")
    return ClientKey(table["public_key"], secret, table["strategy"],
                     bool(table.get("may_kill_account", False)))


def parse_gateway(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The gateway's config from a parsed TOML document (its ``gateway`` table)."""
    env = os.environ if environ is None else environ
    table = data.get("gateway")
    if not isinstance(table, dict):
        raise GatewayConfigError("no [gateway] table (with at least one [[gateway.client]])")
    _typed("gateway", table, _TOP)
    clients = tuple(_client(n, t, env) for n, t in enumerate(table.get("client", [])))
    if not clients:
        raise GatewayConfigError("gateway: no [[gateway.client]] keys: nobody could connect")
    keys = [c.public_key for c in clients]
    if len(set(keys)) != len(keys):
        raise GatewayConfigError("gateway.client: a public_key is listed twice")
    port = table.get("port", DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise GatewayConfigError(f"gateway.port: expected 0-65535, got {port}")
    return GatewayConfig(clients, table.get("host", DEFAULT_HOST), port,
                         table.get("certfile"), table.get("keyfile"))


def load_gateway(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> GatewayConfig:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GatewayConfigError(f"{file}: cannot read the config: {exc}") from None
    try:
        return parse_gateway(data, environ)
    except GatewayConfigError as exc:
        raise GatewayConfigError(f"{file}: {exc}") from None
