"""TOML configuration for the runner and the CLI, checked strictly.

A config file names the venue and *the environment variables* that hold the keys, never the keys.
Every problem (missing key, unknown key, wrong type) is reported with the file, the dotted key and
what was expected, before anything connects.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from attrs import define, field

from qfex_oms.client.session import Credentials
from qfex_oms.errors import QfexOmsError

EMBEDDED = "embedded"
DEMO_KEYS = ("qfex_pub_demo", "qfex_secret_demo")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(QfexOmsError):
    pass


@define
class GuardLimits:
    max_open_orders: int | None = None
    max_position: Decimal | None = None  # absolute position per symbol, as the exchange reports it
    max_notional: Decimal | None = None  # sum over symbols of |position| * last fill price
    max_rejects_per_minute: int | None = None
    max_disconnect_seconds: float | None = None
    # per symbol: the position if every open order and TWAP remainder on one side filled
    max_exposure: Decimal | None = None


@define
class Config:
    path: Path | None
    url: str = EMBEDDED
    public_key_env: str = "QFEX_PUBLIC_KEY"
    secret_key_env: str = "QFEX_SECRET_KEY"
    account_id: str | None = None  # a subaccount; None: the primary account
    auth: str = "hmac"  # or "jwt": the token from the variable named by jwt_env
    jwt_env: str = "QFEX_JWT"
    sim_time_scale: float = 1000.0
    manager: dict[str, Any] = field(factory=dict)
    guard: GuardLimits = field(factory=GuardLimits)
    on_exit: str = "cancel_all"
    shutdown_timeout: float = 5.0
    log_level: str = "info"
    log_json_file: str | None = None
    strategy: dict[str, Any] = field(factory=dict)

    @property
    def embedded(self) -> bool:
        return self.url == EMBEDDED

    @property
    def local_simulator(self) -> bool:
        """A plain ``ws://`` URL on loopback: a ``qfex-oms sim`` process, never a real QFEX venue."""
        return urlsplit(self.url).scheme == "ws" and urlsplit(self.url).hostname in _LOOPBACK

    def key_origin(self) -> str:
        """Where ``credentials()`` takes the keys from, for an error message about them."""
        where = f"in {self.path}" if self.path is not None else "in the config"
        if self.auth == "jwt":
            return (f"(the JWT came from the environment variable {self.jwt_env}, named by "
                    f"exchange.jwt_env {where})")
        public, secret = os.environ.get(self.public_key_env), os.environ.get(self.secret_key_env)
        if not (public and secret):
            return (f"(the simulator's demo keys: {self.public_key_env} / {self.secret_key_env} are "
                    "unset)")
        return (f"(the public key came from the environment variable {self.public_key_env}, the secret "
                f"from {self.secret_key_env}: named by exchange.public_key_env / exchange.secret_key_env "
                f"{where})")

    def credentials(self) -> Credentials:
        """Keys (or a JWT) from the environment variables the file names, and its ``account_id``.

        The embedded venue and a simulator on loopback (``ws://127.0.0.1:...``) fall back to the demo
        keys when those variables are unset; any other venue requires them.
        """
        if self.auth == "jwt":
            return self._jwt_credentials()
        public, secret = os.environ.get(self.public_key_env), os.environ.get(self.secret_key_env)
        if public and secret:
            return Credentials(public, secret, self.account_id)
        if self.embedded or self.local_simulator:
            return Credentials(*DEMO_KEYS, self.account_id)
        missing = [n for n, v in ((self.public_key_env, public), (self.secret_key_env, secret)) if not v]
        raise ConfigError(f"{self.path}: set the environment variable(s) {', '.join(missing)} "
                          f"(named by exchange.public_key_env / exchange.secret_key_env)")

    def _jwt_credentials(self) -> Credentials:
        token = os.environ.get(self.jwt_env)
        if not token:
            raise ConfigError(f"{self.path}: set the environment variable {self.jwt_env} to the JWT "
                              f"(exchange.auth = \"jwt\"; the variable is named by exchange.jwt_env)")
        if "jwt" not in attrs.fields_dict(Credentials):
            # The client cannot send a JWT yet (qfex_oms.client.session.Credentials has no jwt field):
            # say so before connecting rather than authenticate with something else.
            raise ConfigError(f"{self.path}: exchange.auth = \"jwt\": this version of the client "
                              "cannot authenticate with a JWT yet; use API keys (auth = \"hmac\")")
        public = os.environ.get(self.public_key_env) or ""
        fields: dict[str, Any] = {"public_key": public, "secret_key": "", "account_id": self.account_id,
                                  "jwt": token}
        return Credentials(**fields)


# section -> key -> (expected type description, converter, required)
_NUMBER = "a number"
_SCHEMA: dict[str, dict[str, tuple[str, Any, bool]]] = {
    "exchange": {
        "url": ("a ws:// or wss:// URL, or \"embedded\"", str, True),
        "public_key_env": ("an environment variable name", str, False),
        "secret_key_env": ("an environment variable name", str, False),
        "account_id": ("a subaccount id (a string)", str, False),
        "auth": ("\"hmac\" (API keys) or \"jwt\"", str, False),
        "jwt_env": ("an environment variable name", str, False),
        "sim_time_scale": (_NUMBER, float, False),
    },
    "manager": {
        "request_timeout": (_NUMBER, float, False),
        "cancel_on_disconnect": ("true or false", bool, False),
        "kill_timeout": (_NUMBER, float, False),
        "journal": ("a file path", str, False),
        "journal_retention": ("a number of seconds", float, False),
        "journal_failure": ("\"halt_new_orders\" or \"continue\"", str, False),
        "client_id_prefix": ("a string", str, False),
    },
    "guard": {
        "max_open_orders": ("an integer", int, False),
        "max_position": (_NUMBER, Decimal, False),
        "max_notional": (_NUMBER, Decimal, False),
        "max_rejects_per_minute": ("an integer", int, False),
        "max_disconnect_seconds": (_NUMBER, float, False),
        "max_exposure": (_NUMBER, Decimal, False),
    },
    "runner": {
        "on_exit": ("\"cancel_all\", \"leave_gtc\" or \"flatten\"", str, False),
        "shutdown_timeout": (_NUMBER, float, False),
    },
    "logging": {
        "level": ("one of debug, info, warning, error", str, False),
        "json_file": ("a file path", str, False),
    },
}
_FREE_SECTIONS = {"strategy"}  # parameters passed to the strategy as they are


def _convert(where: str, value: Any, expected: str, kind: Any) -> Any:
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, int | float) and not isinstance(value, bool) if kind is float else
          isinstance(value, int | float | str) and not isinstance(value, bool) if kind is Decimal else
          isinstance(value, str))
    if not ok:
        raise ConfigError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")
    if kind is Decimal:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    return kind(value)


def load_config(path: str | os.PathLike[str]) -> Config:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not valid TOML: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    values: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if section in _FREE_SECTIONS:
            if not isinstance(body, dict):
                raise ConfigError(f"{file}: [{section}] must be a table")
            continue
        schema = _SCHEMA.get(section)
        if schema is None and not isinstance(body, dict):
            raise ConfigError(f"{file}: unknown top-level key {section} (keys belong in a [section])")
        if schema is None:
            known = ", ".join(sorted([*_SCHEMA, *_FREE_SECTIONS]))
            raise ConfigError(f"{file}: unknown section [{section}] (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(f"{file}: [{section}] must be a table")
        for key, value in body.items():
            if key not in schema:
                raise ConfigError(f"{file}: unknown key {section}.{key} (known: {', '.join(schema)})")
            expected, kind, _ = schema[key]
            values.setdefault(section, {})[key] = _convert(f"{file}: {section}.{key}", value, expected, kind)
    for section, schema in _SCHEMA.items():
        for key, (expected, _, required) in schema.items():
            if required and key not in values.get(section, {}):
                raise ConfigError(f"{file}: missing key {section}.{key} ({expected})")
    return _build(file, values, data.get("strategy", {}))


def _build(file: Path, v: dict[str, dict[str, Any]], strategy: dict[str, Any]) -> Config:
    exchange, runner, logging = v.get("exchange", {}), v.get("runner", {}), v.get("logging", {})
    url = exchange["url"]
    if url != EMBEDDED and not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"{file}: exchange.url: expected {_SCHEMA['exchange']['url'][0]}, got {url!r}")
    on_exit = runner.get("on_exit", "cancel_all")
    if on_exit not in ("cancel_all", "leave_gtc", "flatten"):
        raise ConfigError(f"{file}: runner.on_exit: expected {_SCHEMA['runner']['on_exit'][0]}, "
                          f"got {on_exit!r}")
    if exchange.get("auth", "hmac") not in ("hmac", "jwt"):
        raise ConfigError(f"{file}: exchange.auth: expected {_SCHEMA['exchange']['auth'][0]}, "
                          f"got {exchange['auth']!r}")
    if exchange.get("account_id") == "":
        raise ConfigError(f"{file}: exchange.account_id: expected {_SCHEMA['exchange']['account_id'][0]}, "
                          "got an empty string (leave it out for the primary account)")
    failure = v.get("manager", {}).get("journal_failure", "halt_new_orders")
    if failure not in ("halt_new_orders", "continue"):
        raise ConfigError(f"{file}: manager.journal_failure: expected "
                          f"{_SCHEMA['manager']['journal_failure'][0]}, got {failure!r}")
    level = logging.get("level", "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{file}: logging.level: expected {_SCHEMA['logging']['level'][0]}, got {level!r}")
    config = Config(file, url, strategy=dict(strategy), manager=dict(v.get("manager", {})),
                    guard=GuardLimits(**v.get("guard", {})), on_exit=on_exit,
                    shutdown_timeout=runner.get("shutdown_timeout", 5.0), log_level=level,
                    log_json_file=logging.get("json_file"))
    for key in ("public_key_env", "secret_key_env", "account_id", "auth", "jwt_env", "sim_time_scale"):
        if key in exchange:
            setattr(config, key, exchange[key])
    return config
