"""Config files: load_config's strict checks (unit), and the CLI turning them into exit 2 (subprocess)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from clikit import REPO, arun_all, arun_cli, explain, json_out

from qfex_oms.app.cli import main, parse_params
from qfex_oms.app.config import DEMO_KEYS, Config, ConfigError, GuardLimits, load_config
from qfex_oms.errors import InvalidArgument

GOOD = """\
[exchange]
url = "ws://127.0.0.1:8765"
[guard]
max_open_orders = 10
"""

# name -> (file text or None for "no file", the parts the message must contain)
BAD: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "missing key": ("[guard]\nmax_open_orders = 3\n", ("missing key exchange.url", "ws://")),
    "missing section": ("", ("missing key exchange.url",)),
    "unknown key": (GOOD + "max_orders = 3\n", ("unknown key guard.max_orders", "max_open_orders")),
    "unknown section": (GOOD + "[gaurd]\nx = 1\n", ("unknown section [gaurd]", "guard")),
    "top-level key": ('url = "embedded"\n' + GOOD, ("unknown top-level key url",)),
    "wrong type int": (GOOD.replace("10", '"ten"'),
                       ("guard.max_open_orders", "expected an integer", "'ten'")),
    "bool is not an int": (GOOD.replace("10", "true"), ("guard.max_open_orders", "expected an integer")),
    "wrong type number": (GOOD + "max_notional = [1]\n", ("guard.max_notional", "expected a number")),
    "wrong type string": ("[exchange]\nurl = 5\n", ("exchange.url", "expected a ws:// or wss:// URL")),
    "bad url": ('[exchange]\nurl = "http://x"\n', ("exchange.url", "expected a ws:// or wss:// URL")),
    "bad on_exit": (GOOD + '[runner]\non_exit = "panic"\n',
                    ("runner.on_exit", '"cancel_all", "leave_gtc" or "flatten"', "'panic'")),
    "bad level": (GOOD + '[logging]\nlevel = "loud"\n', ("logging.level", "one of debug")),
    "section not a table": ("exchange = 5\n", ("[exchange] must be a table",)),
    "bad toml": ("[exchange\nurl = \n", ("not valid TOML", "line 1")),
    "missing file": (None, ("no such config file",)),
}


def _file(tmp_path: Path, text: str | None) -> Path:
    path = tmp_path / "bad config.toml"  # a space: the message must still name it exactly
    if text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_load_config_names_the_file_the_key_and_what_was_expected(case: str, tmp_path: Path) -> None:
    text, parts = BAD[case]
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for part in parts:
        assert part in message, (part, message)


def test_load_config_reads_every_section(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text("""\
[exchange]
url = "wss://trade.qfex.io"
public_key_env = "MY_PUB"
secret_key_env = "MY_SECRET"
sim_time_scale = 10
[manager]
request_timeout = 3
cancel_on_disconnect = true
kill_timeout = 2.5
journal = "j.sqlite"
client_id_prefix = "t-"
[guard]
max_open_orders = 5
max_position = "1.5"
max_notional = 1000
max_rejects_per_minute = 4
max_disconnect_seconds = 2
[runner]
on_exit = "leave_gtc"
shutdown_timeout = 7
[logging]
level = "debug"
json_file = "x.jsonl"
[strategy]
symbol = "TSLA-USD"
nested = { a = 1 }
""")
    config = load_config(path)
    assert config.url == "wss://trade.qfex.io" and not config.embedded and not config.local_simulator
    assert (config.public_key_env, config.secret_key_env) == ("MY_PUB", "MY_SECRET")
    assert config.sim_time_scale == 10.0
    assert config.manager == {"request_timeout": 3.0, "cancel_on_disconnect": True, "kill_timeout": 2.5,
                              "journal": "j.sqlite", "client_id_prefix": "t-"}
    assert config.guard == GuardLimits(5, Decimal("1.5"), Decimal(1000), 4, 2.0)
    assert (config.on_exit, config.shutdown_timeout) == ("leave_gtc", 7.0)
    assert (config.log_level, config.log_json_file) == ("debug", "x.jsonl")
    assert config.strategy == {"symbol": "TSLA-USD", "nested": {"a": 1}}


@pytest.mark.parametrize("name", ["sim", "uat", "prod"])
def test_the_shipped_configs_load(name: str) -> None:
    config = load_config(REPO / "config" / f"{name}.toml")
    assert config.url == {"sim": "embedded", "uat": "wss://trade.qfex.io",
                          "prod": "wss://trade.qfex.com"}[name]
    assert config.on_exit == "cancel_all"
    assert config.guard.max_open_orders is not None and config.guard.max_disconnect_seconds is not None
    text = (REPO / "config" / f"{name}.toml").read_text()
    assert "secret" not in text.replace("secret_key_env", "")  # keys never live in the file


def test_keys_come_from_the_environment_with_demo_keys_only_for_simulators(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QFEX_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("QFEX_SECRET_KEY", raising=False)
    for url in ("embedded", "ws://127.0.0.1:8765", "ws://localhost:1"):
        assert (Config(None, url).credentials().public_key, Config(None, url).credentials().secret_key) \
            == DEMO_KEYS
    for url in ("wss://trade.qfex.io", "ws://10.0.0.5:8765", "wss://127.0.0.1:8765"):
        with pytest.raises(ConfigError, match="QFEX_PUBLIC_KEY, QFEX_SECRET_KEY"):
            Config(Path("uat.toml"), url).credentials()
    monkeypatch.setenv("QFEX_PUBLIC_KEY", "pub-from-env")
    monkeypatch.setenv("QFEX_SECRET_KEY", "secret-from-env")
    for url in ("wss://trade.qfex.io", "ws://127.0.0.1:8765", "embedded"):
        creds = Config(None, url).credentials()
        assert (creds.public_key, creds.secret_key) == ("pub-from-env", "secret-from-env")
        assert "secret-from-env" not in repr(creds)


def test_strategy_params_are_read_as_toml_values_or_strings() -> None:
    assert parse_params(["cycles=5", "interval=0.5", "symbol=TSLA-USD", 'side="SELL"', "on=true",
                          'symbols=["A", "B"]', "empty=", "eq=a=b"]) == {
        "cycles": 5, "interval": 0.5, "symbol": "TSLA-USD", "side": "SELL", "on": True,
        "symbols": ["A", "B"], "empty": "", "eq": "a=b"}
    for bad in ("novalue", "=5"):
        with pytest.raises(InvalidArgument):
            parse_params([bad])


async def test_every_config_error_exits_2_naming_file_key_and_expectation(tmp_path: Path) -> None:
    # One error kind per command: each command loads its config the same way.
    cases = {"missing key": ["orders"], "unknown key": ["kill", "--yes"],
             "wrong type int": ["run", "strategies/quoter.py", "--json"],
             "bad toml": ["cancel", "--symbol", "AAPL-USD", "--order-id", "x"], "missing file": ["orders"]}
    paths = {}
    for i, case in enumerate(cases):
        directory = tmp_path / str(i)
        directory.mkdir()
        paths[case] = _file(directory, BAD[case][0])
    results = await arun_all(*([*command, "--config", str(paths[case])] for case, command in cases.items()))
    for case, proc in zip(cases, results, strict=True):
        assert proc.returncode == 2, (case, explain(proc))
        assert f"qfex-oms: error: {paths[case]}: " in proc.stderr, (case, explain(proc))
        for part in BAD[case][1]:
            assert part in proc.stderr, (case, part, explain(proc))
        assert "Traceback" not in proc.stderr
    run_json = json_out(results[2])  # --json also says so on stdout
    assert run_json["exit_code"] == 2 and "guard.max_open_orders" in run_json["error"]


async def test_bad_usage_of_run_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def run(:\n")
    results = await arun_all(["run", str(tmp_path / "missing.py")], ["run", str(broken)],
                             ["run", "strategies/quoter.py", "--param", "oops"])
    for proc, expected in zip(results, ("no strategy file", "cannot import", "KEY=VALUE"), strict=True):
        assert proc.returncode == 2, explain(proc)
        assert expected in proc.stderr, explain(proc)


@pytest.mark.parametrize("args", [
    ["cancel", "--symbol", "AAPL-USD", "--order-id", "a", "--twap-id", "b"],  # two selectors
    ["cancel", "--symbol", "AAPL-USD"],  # none
    ["cancel", "--order-id", "x"],  # no --symbol
    ["orders", "--url", "http://127.0.0.1:1"],
    ["orders", "--journal", "/nonexistent/journal.sqlite"],
    ["orders", "--account", "a"],  # only with --journal
    ["run", "strategies/quoter.py", "--url", "tcp://x"],
    ["kill", "--no-such-option"],
])
def test_argument_errors_exit_2_before_anything_connects(args: list[str]) -> None:
    # Argument parsing only: in-process (the subprocess tests cover the same exit path end to end).
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output


def test_account_id_and_auth_come_from_the_exchange_table(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QFEX_JWT", raising=False)
    file = tmp_path / "sub.toml"
    file.write_text(GOOD.replace("[guard]", 'account_id = "sub-1"\n[guard]'))
    config = load_config(file)
    assert config.account_id == "sub-1" and config.credentials().account_id == "sub-1"
    assert Config(None, "embedded").credentials().account_id is None  # the primary account
    for text, parts in (('auth = "oauth"\n', ("exchange.auth", '"hmac" (API keys) or "jwt"', "'oauth'")),
                        ('account_id = ""\n', ("exchange.account_id", "empty string"))):
        file.write_text(GOOD.replace("[guard]", text + "[guard]"))
        with pytest.raises(ConfigError) as caught:
            load_config(file)
        assert all(part in str(caught.value) for part in parts), caught.value
    file.write_text(GOOD.replace("[guard]", 'auth = "jwt"\njwt_env = "MY_JWT"\n[guard]'))
    jwt = load_config(file)
    with pytest.raises(ConfigError, match="set the environment variable MY_JWT"):
        jwt.credentials()  # no demo fallback: a JWT is never guessed


async def test_account_id_and_auth_on_the_command_line(sim_url: str, tmp_path: Path) -> None:
    sub = "00000000-0000-4000-8000-000000000001"  # the demo account's own user_id in the simulator
    ok, unknown, no_jwt, empty = await arun_all(
        ["positions", "--url", sim_url, "--account-id", sub, "--json"],
        ["balance", "--url", sim_url, "--account-id", "someone-else"],
        ["orders", "--url", sim_url, "--auth", "jwt"],
        ["leverage", "--url", sim_url, "--account-id", ""])
    assert ok.returncode == 0, explain(ok)
    assert json_out(ok)["account"] == f"qfex_pub_demo/{sub}"
    assert unknown.returncode == 3, explain(unknown)  # the exchange refused the subaccount
    assert no_jwt.returncode == 2 and "QFEX_JWT" in no_jwt.stderr, explain(no_jwt)
    assert empty.returncode == 2 and "--account-id" in empty.stderr, explain(empty)


async def test_a_jwt_from_the_environment_authenticates_the_cli(sim_url: str) -> None:
    """``--auth jwt`` (or ``exchange.auth = "jwt"``) sends the token named by jwt_env (issue 13)."""
    import time

    from clikit import cli_env

    from qfex_oms.sim import default_accounts, mint_jwt

    demo = next(a for a in default_accounts() if a.public_key == "qfex_pub_demo")
    env = {**cli_env(), "QFEX_JWT": mint_jwt(demo, time.time())}
    env.pop("QFEX_PUBLIC_KEY", None)
    env.pop("QFEX_SECRET_KEY", None)
    good = await arun_cli("orders", "--url", sim_url, "--auth", "jwt", "--json", env=env)
    assert good.returncode == 0, explain(good)
    forged = await arun_cli("orders", "--url", sim_url, "--auth", "jwt", "--json",
                            env={**env, "QFEX_JWT": env["QFEX_JWT"][:-4] + "AAAA"})
    assert forged.returncode == 3 and "refused the JWT" in forged.stderr, explain(forged)


def test_guard_table_feeds_pre_trade_risk_and_exchange_table_market_data(tmp_path: Path) -> None:
    """Issue 15: the [guard] table's pre-trade keys (and per-symbol tables) become the manager's
    ``risk=``; ``max_exposure`` is its ``max_position``. Issue 16: [exchange] mds_url and mds_symbols
    open the market data beside the trade connection."""
    from qfex_oms import RiskLimits

    file = tmp_path / "c.toml"
    market = 'mds_url = "ws://127.0.0.1:9"\nmds_symbols = ["AAPL-USD"]\n'
    file.write_text(GOOD.replace("[guard]", market + "[guard]")
                    + 'max_exposure = 5\nmax_order_quantity = 2\nprice_band_pct = 3\n'
                    + '[guard.symbols."TSLA-USD"]\nmax_order_quantity = 1\n')
    config = load_config(file)
    risk = config.manager["risk"]
    assert isinstance(risk, RiskLimits)
    assert (risk.max_position, risk.max_order_quantity, risk.price_band_pct) == (5, 2, 3)
    assert risk.per_symbol["TSLA-USD"].max_order_quantity == 1
    assert config.manager["market_data"] == "ws://127.0.0.1:9"
    assert config.manager["market_data_symbols"] == ("AAPL-USD",)
    assert "risk" not in load_config(_write(tmp_path, GOOD)).manager  # no pre-trade key: nothing checked
    for text, part in (('max_order_quantity = 0\n', "guard.max_order_quantity"),
                       ('[guard.symbols."X"]\nmax_order_quantity = -1\n', "per_symbol")):
        file.write_text(GOOD + text)
        with pytest.raises(ConfigError) as caught:
            load_config(file)
        assert part in str(caught.value) and str(file) in str(caught.value), caught.value
    file.write_text(GOOD.replace("[guard]", 'mds_url = "ws://127.0.0.1:9"\n[guard]'))
    with pytest.raises(ConfigError, match="mds_symbols"):
        load_config(file)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plain.toml"
    path.write_text(text)
    return path
