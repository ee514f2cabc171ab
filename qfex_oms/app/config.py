"""TOML configuration for the runner and the CLI, checked strictly.

A config file names the venue and *the environment variables* that hold the keys, never the keys.
Each [section] is an attrs class with validated fields, built by cattrs (unknown keys forbidden, no
type coercion: ``"5"`` is not an integer). Every problem (missing key, unknown key, wrong type, a
value out of range such as a negative timeout or guard limit) is reported with the file, the dotted
key and what was expected, before anything connects.

Several strategies in one process (issue 18) are ``[[strategy]]`` tables instead of the one free
``[strategy]`` table of parameters::

    [[strategy]]
    name = "mm"                          # its namespace on the wire: client ids go out as mm:<id>
    path = "strategies/quoter.py"
    on_exit = "cancel_all"               # or "leave_gtc"; acts through the strategy's view only
    params = { symbol = "AAPL-USD" }
    guard = { max_open_orders = 10 }     # its own limits; [guard] stays the account's

They share one connection, one pacer and the account-level ``[guard]``. ``flatten`` is the
account's only (``runner.on_exit``): positions are not per strategy.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import cattrs
from attrs import define, field

from qfex_oms.client.session import Credentials
from qfex_oms.core.model import valid_strategy
from qfex_oms.core.risk import RiskLimits
from qfex_oms.errors import InvalidArgument, QfexOmsError

EMBEDDED = "embedded"
DEMO_KEYS = ("qfex_pub_demo", "qfex_secret_demo")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(QfexOmsError):
    pass


class InvalidValue(ValueError):
    """A value out of range; ``key`` is its dotted config key (``guard.max_open_orders``)."""

    def __init__(self, key: str, expected: str, value: Any, note: str = "") -> None:
        super().__init__(f"{key}: expected {expected}, got {value!r}{note}")
        self.key, self.expected, self.value = key, expected, value


def _at_least(bound: int, strict: bool = False) -> Any:
    """A validator: None, or a number >= bound (> bound when strict), named by its dotted key."""
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or \
                (value <= bound if strict else value < bound):
            section = _SECTION_OF[type(instance)]
            raise InvalidValue(f"{section}.{attribute.name}", _EXPECTED[section][attribute.name], value)

    return check


def _one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value not in choices:
            raise InvalidValue(f"{_SECTION_OF[type(instance)]}.{attribute.name}",
                               _EXPECTED[_SECTION_OF[type(instance)]][attribute.name], value)

    return check


@define
class GuardLimits:
    """The kill-switch guard's limits (None: no limit). Negative limits are refused."""

    max_open_orders: int | None = field(default=None, validator=_at_least(0))
    # absolute position per symbol, as the exchange reports it
    max_position: Decimal | None = field(default=None, validator=_at_least(0))
    # sum over symbols of |position| * last fill price
    max_notional: Decimal | None = field(default=None, validator=_at_least(0))
    max_rejects_per_minute: int | None = field(default=None, validator=_at_least(0))
    max_disconnect_seconds: float | None = field(default=None, validator=_at_least(0, strict=True))
    # per symbol: the position if every open order and TWAP remainder on one side filled
    max_exposure: Decimal | None = field(default=None, validator=_at_least(0))
    # Pre-trade (core.risk.RiskLimits, checked before an order's frame exists). max_exposure above
    # feeds RiskLimits.max_position, so an order is refused before it leaves at the number the guard
    # would trip at after its fills. ``symbols``: per-symbol overrides, [guard.symbols."AAPL-USD"].
    max_order_quantity: Decimal | None = field(default=None, validator=_at_least(0, strict=True))
    max_order_notional: Decimal | None = field(default=None, validator=_at_least(0, strict=True))
    max_gross_notional: Decimal | None = field(default=None, validator=_at_least(0, strict=True))
    price_band_pct: Decimal | None = field(default=None, validator=_at_least(0, strict=True))
    max_orders_per_second: int | None = field(default=None, validator=_at_least(0, strict=True))
    check_margin: bool = False
    symbols: dict[str, dict[str, Any]] = field(factory=dict)

    def risk_limits(self, where: str = "[guard]") -> RiskLimits | None:
        """The pre-trade limits these keys set, or None when none is set (nothing is checked)."""
        per_symbol = {symbol: {("max_position" if k == "max_exposure" else k): v for k, v in keys.items()}
                      for symbol, keys in self.symbols.items()}
        fields = {"max_order_quantity": self.max_order_quantity,
                  "max_order_notional": self.max_order_notional, "max_position": self.max_exposure,
                  "max_gross_notional": self.max_gross_notional, "price_band_pct": self.price_band_pct,
                  "max_orders_per_second": self.max_orders_per_second}
        chosen = {k: v for k, v in fields.items() if v is not None}
        if not chosen and not per_symbol and not self.check_margin:
            return None
        try:
            build: Any = RiskLimits  # validates each value and the per-symbol tables itself
            limits: RiskLimits = build(**chosen, check_margin=self.check_margin, per_symbol=per_symbol)
            return limits
        except (InvalidArgument, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


@define(kw_only=True)
class StrategyTable:
    """One ``[[strategy]]`` table: a strategy file run under its own name, limits and exit policy."""

    name: str
    path: str
    params: dict[str, Any] = field(factory=dict)
    guard: GuardLimits = field(factory=GuardLimits)
    on_exit: str = "cancel_all"


STRATEGY_EXIT_POLICIES = ("cancel_all", "leave_gtc")
_STRATEGY_EXPECTED = {
    "name": "a strategy name (1-16 letters, digits, _ or -; not \"twap\"), unique in the file",
    "path": "a strategy file path",
    "params": "a table of the strategy's parameters",
    "guard": "a table of guard limits (as [guard])",
    "on_exit": "\"cancel_all\" or \"leave_gtc\" (flatten is the account's: runner.on_exit)",
}


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
    # While disconnected, the strategy's calls to the manager wait for the connection instead of
    # raising NotConnected; the guard's max_disconnect_seconds bounds the wait (it trips past it).
    pause_while_disconnected: bool = False
    log_level: str = "info"
    log_json_file: str | None = None
    strategy: dict[str, Any] = field(factory=dict)
    strategies: list[StrategyTable] = field(factory=list)  # the [[strategy]] tables, if any

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


# What each key expects, as the error messages say it.
_NUMBER = "a number"
_EXPECTED: dict[str, dict[str, str]] = {
    "exchange": {
        "url": "a ws:// or wss:// URL, or \"embedded\"",
        "public_key_env": "an environment variable name",
        "secret_key_env": "an environment variable name",
        "account_id": "a subaccount id (a string)",
        "auth": "\"hmac\" (API keys) or \"jwt\"",
        "jwt_env": "an environment variable name",
        "sim_time_scale": "a number > 0",
        "mds_url": "the market-data (MDS) URL, ws:// or wss://",
        "mds_symbols": "a list of symbols to follow on the MDS",
    },
    "manager": {
        "request_timeout": "a number > 0",
        "cancel_on_disconnect": "true or false",
        "kill_timeout": "a number > 0",
        "journal": "a file path",
        "journal_retention": "a number of seconds >= 0",
        "journal_failure": "\"halt_new_orders\" or \"continue\"",
        "client_id_prefix": "a string",
    },
    "guard": {
        "max_open_orders": "an integer >= 0",
        "max_position": "a number >= 0",
        "max_notional": "a number >= 0",
        "max_rejects_per_minute": "an integer >= 0",
        "max_disconnect_seconds": "a number > 0",
        "max_exposure": "a number >= 0",
        "max_order_quantity": "a number > 0",
        "max_order_notional": "a number > 0",
        "max_gross_notional": "a number > 0",
        "price_band_pct": "a number > 0 (percent)",
        "max_orders_per_second": "an integer > 0",
        "check_margin": "true or false",
        "symbols": "tables of per-symbol limits: max_order_quantity, max_order_notional, max_exposure, "
                   "price_band_pct",
    },
    "runner": {
        "on_exit": "\"cancel_all\", \"leave_gtc\" or \"flatten\"",
        "shutdown_timeout": "a number > 0",
        "pause_while_disconnected": "true or false",
    },
    "logging": {
        "level": "one of debug, info, warning, error",
        "json_file": "a file path",
    },
}
# [strategy]: parameters passed to the strategy as they are; [gateway]: read by qfex_oms.gateway.
_FREE_SECTIONS = {"strategy", "gateway"}


def _url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value != EMBEDDED and not value.startswith(("ws://", "wss://")):
        raise InvalidValue("exchange.url", _EXPECTED["exchange"]["url"], value)


def _not_empty(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value == "":
        raise InvalidValue("exchange.account_id", _EXPECTED["exchange"]["account_id"], value,
                           " (an empty string: leave it out for the primary account)")


@define(kw_only=True)
class ExchangeSection:
    url: str = field(validator=_url)
    public_key_env: str = "QFEX_PUBLIC_KEY"
    secret_key_env: str = "QFEX_SECRET_KEY"
    account_id: str | None = field(default=None, validator=_not_empty)
    auth: str = field(default="hmac", validator=_one_of("hmac", "jwt"))
    jwt_env: str = "QFEX_JWT"
    sim_time_scale: float = field(default=1000.0, validator=_at_least(0, strict=True))
    mds_url: str | None = None  # QFEX's market data (wss://mds.qfex.com): opened as oms.market_data
    mds_symbols: list[str] = field(factory=list)


@define(kw_only=True)
class ManagerSection:
    """The order manager's options the file may set (None: the manager's default)."""

    request_timeout: float | None = field(default=None, validator=_at_least(0, strict=True))
    cancel_on_disconnect: bool | None = None
    kill_timeout: float | None = field(default=None, validator=_at_least(0, strict=True))
    journal: str | None = None
    journal_retention: float | None = field(default=None, validator=_at_least(0))
    journal_failure: str | None = field(default=None, validator=_one_of("halt_new_orders", "continue"))
    client_id_prefix: str | None = None


@define(kw_only=True)
class RunnerSection:
    on_exit: str = field(default="cancel_all", validator=_one_of("cancel_all", "leave_gtc", "flatten"))
    shutdown_timeout: float = field(default=5.0, validator=_at_least(0, strict=True))
    pause_while_disconnected: bool = False


@define(kw_only=True)
class LoggingSection:
    level: str = field(default="info", validator=_one_of("debug", "info", "warning", "error"))
    json_file: str | None = None


@define(kw_only=True)
class ConfigFile:
    """A config file as cattrs builds it, section by section."""

    exchange: ExchangeSection
    manager: ManagerSection = field(factory=ManagerSection)
    guard: GuardLimits = field(factory=GuardLimits)
    runner: RunnerSection = field(factory=RunnerSection)
    logging: LoggingSection = field(factory=LoggingSection)
    strategy: dict[str, Any] = field(factory=dict)
    gateway: dict[str, Any] = field(factory=dict)  # qfex_oms.gateway reads it from the same file


_SECTION_OF: dict[type, str] = {ExchangeSection: "exchange", ManagerSection: "manager", GuardLimits: "guard",
                                RunnerSection: "runner", LoggingSection: "logging"}
_CLASS_OF = {name: cls for cls, name in _SECTION_OF.items()}


class _WrongType(TypeError):
    def __init__(self, value: Any) -> None:
        super().__init__(f"got {type(value).__name__} {value!r}")
        self.value = value


def _strict(kind: type, accepts: Any, build: Any = None) -> Any:
    """A cattrs hook that takes TOML's value as it is: no "5" -> 5, no true -> 1."""

    def hook(value: Any, _: Any) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepts):
            raise _WrongType(value)
        try:
            return (build or kind)(value)
        except (InvalidOperation, ValueError):
            raise _WrongType(value) from None

    return hook


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, str))
    converter.register_structure_hook(bool, _strict(bool, bool))
    converter.register_structure_hook(int, _strict(int, int))
    converter.register_structure_hook(float, _strict(float, int | float))
    converter.register_structure_hook(Decimal, _strict(Decimal, int | float | str, lambda v: Decimal(str(v))))
    converter.register_structure_hook_func(lambda t: t == dict[str, Any], _strict(dict, dict))
    return converter


_CONVERTER = _converter()


def _first_problem(exc: BaseException, section: str | None = None) -> str:
    """The dotted key and what was wrong, for the first failure cattrs found in the file (``section``
    None) or in one section."""
    if isinstance(exc, InvalidValue):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = ", ".join(_EXPECTED[section or ""])
        return f"unknown key {section}.{sorted(exc.extra_fields)[0]} (known: {known})"
    if not isinstance(exc, cattrs.ClassValidationError):
        return f"{section}: {exc}" if section else str(exc)
    inner = exc.exceptions[0]
    name = next((note.name for note in getattr(inner, "__notes__", ())
                 if isinstance(note, cattrs.AttributeValidationNote)), "")
    if section is None:
        if isinstance(inner, KeyError):  # no [exchange] table at all
            return f"missing key exchange.url ({_EXPECTED['exchange']['url']})"
        return _first_problem(inner, name)
    expected = _EXPECTED[section].get(name, "")
    if isinstance(inner, KeyError):
        return f"missing key {section}.{name} ({expected})"
    if isinstance(inner, _WrongType):
        return f"{section}.{name}: expected {expected}, {inner}"
    return _first_problem(inner, section)


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
    tables = data.pop("strategy") if isinstance(data.get("strategy"), list) else None
    for section, body in data.items():
        known = section in _EXPECTED or section in _FREE_SECTIONS
        if not known and not isinstance(body, dict):
            raise ConfigError(f"{file}: unknown top-level key {section} (keys belong in a [section])")
        if not known:
            names = ", ".join(sorted([*_EXPECTED, *_FREE_SECTIONS]))
            raise ConfigError(f"{file}: unknown section [{section}] (known: {names})")
        if not isinstance(body, dict):
            raise ConfigError(f"{file}: [{section}] must be a table")
    try:
        parsed = _CONVERTER.structure(data, ConfigFile)
    except (cattrs.BaseValidationError, InvalidValue) as exc:
        raise ConfigError(f"{file}: {_first_problem(exc)}") from None
    config = _build(file, parsed)
    if tables is not None:
        config.strategies = strategy_tables(file, tables)
    return config


def strategy_tables(file: Path | None, tables: list[Any]) -> list[StrategyTable]:
    """The ``[[strategy]]`` tables, each checked strictly; names must be unique."""
    result: list[StrategyTable] = []
    for number, table in enumerate(tables, 1):
        where = f"{file}: strategy[{number}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        try:
            parsed = _CONVERTER.structure(table, StrategyTable)
        except (cattrs.BaseValidationError, InvalidValue) as exc:
            raise ConfigError(f"{where}: {_strategy_problem(exc)}") from None
        for key, ok in (("name", valid_strategy(parsed.name)), ("path", bool(parsed.path)),
                        ("on_exit", parsed.on_exit in STRATEGY_EXIT_POLICIES)):
            if not ok:
                raise ConfigError(f"{where}: {key}: expected {_STRATEGY_EXPECTED[key]}, "
                                  f"got {getattr(parsed, key)!r}")
        if any(other.name == parsed.name for other in result):
            raise ConfigError(f"{where}: name {parsed.name!r} is used by another [[strategy]] table")
        result.append(parsed)
    return result


def _strategy_problem(exc: BaseException) -> str:
    if isinstance(exc, InvalidValue):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key {sorted(exc.extra_fields)[0]} (known: {', '.join(_STRATEGY_EXPECTED)})"
    if not isinstance(exc, cattrs.ClassValidationError):
        return str(exc)
    inner = exc.exceptions[0]
    name = next((note.name for note in getattr(inner, "__notes__", ())
                 if isinstance(note, cattrs.AttributeValidationNote)), "")
    if name == "guard" and not isinstance(inner, _WrongType):
        return _first_problem(inner, "guard")
    expected = _STRATEGY_EXPECTED.get(name, "")
    if isinstance(inner, KeyError):
        return f"missing key {name} ({expected})"
    if isinstance(inner, _WrongType):
        return f"{name}: expected {expected}, {inner}"
    return _strategy_problem(inner)


def _build(file: Path, parsed: ConfigFile) -> Config:
    exchange, runner = parsed.exchange, parsed.runner
    manager = {k: v for k, v in attrs.asdict(parsed.manager).items() if v is not None}
    risk = parsed.guard.risk_limits(f"{file}: [guard]")
    if risk is not None:
        manager["risk"] = risk
    if exchange.mds_url is not None:
        if not exchange.mds_symbols:
            raise ConfigError(f"{file}: exchange.mds_url needs exchange.mds_symbols (the symbols to follow)")
        manager["market_data"] = exchange.mds_url
        manager["market_data_symbols"] = tuple(exchange.mds_symbols)
    if runner.pause_while_disconnected:
        unbounded_pause(file, parsed.guard)
    return Config(file, exchange.url, public_key_env=exchange.public_key_env,
                  secret_key_env=exchange.secret_key_env, account_id=exchange.account_id, auth=exchange.auth,
                  jwt_env=exchange.jwt_env, sim_time_scale=exchange.sim_time_scale, manager=manager,
                  guard=parsed.guard, on_exit=runner.on_exit, shutdown_timeout=runner.shutdown_timeout,
                  pause_while_disconnected=runner.pause_while_disconnected,
                  log_level=parsed.logging.level, log_json_file=parsed.logging.json_file,
                  strategy=dict(parsed.strategy))


def unbounded_pause(file: Path | None, guard: GuardLimits) -> None:
    """A pause while disconnected needs its bound: the guard's disconnect limit, which trips (and
    ends the pause with ``Halted``) once the connection has been down that long."""
    if guard.max_disconnect_seconds is None:
        where = f"{file}: " if file is not None else ""
        raise ConfigError(f"{where}runner.pause_while_disconnected needs guard.max_disconnect_seconds "
                          "(the longest pause before the guard trips and cancels everything)")
