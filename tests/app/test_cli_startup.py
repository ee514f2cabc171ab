"""What ``qfex-oms`` imports before it does anything: only what the command in hand needs.

``qfex_oms/__init__.py`` imports its public names on first use and the command modules import the
simulator, the gateway, the live views and the core inside the commands that use them, so that
``qfex-oms --help``, a usage error or a config error answer in a fraction of the second the order
manager's imports take, and a command that connects does not load the simulator (hypercorn) too.
These tests check which modules got imported (in a fresh interpreter), not how long it took.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orjson
from ports import reserved_port

import qfex_oms

REPO = Path(__file__).resolve().parents[2]

# Run the command in-process, then print the qfex_oms and third-party modules it left imported.
PROBE = """
import sys, orjson
from qfex_oms.app.cli import main
try:
    main(sys.argv[1:], prog_name="qfex-oms")
except SystemExit as exit:
    code = exit.code
print(orjson.dumps({"code": code, "modules": sorted(sys.modules)}).decode())
"""

# Never needed before a command runs (trio itself is: the command modules name it at their top);
# the simulator and the gateway only by the commands that serve them.
HEAVY_FOR_HELP = ("trio_websocket", "httpx", "hypercorn", "rich.live", "structlog", "qfex_oms.core",
                  "qfex_oms.client", "qfex_oms.sim", "qfex_oms.gateway", "qfex_oms.app.live",
                  "qfex_oms.protocol")
SIMULATOR = ("hypercorn", "qfex_oms.sim", "qfex_oms.gateway")


def imported_by(*args: str) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=False)
    assert proc.stdout.strip(), proc.stderr
    out = orjson.loads(proc.stdout.splitlines()[-1])
    return out["code"], out["modules"]


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_help_and_a_usage_error_import_no_manager_simulator_or_network() -> None:
    code, modules = imported_by("--help")
    assert code == 0 and "qfex_oms.app.cli" in modules
    assert loaded(modules, HEAVY_FOR_HELP) == []
    # A missing argument (exit 2): the group's callback has set up logging (structlog) by then.
    code, modules = imported_by("place", "AAPL-USD", "BUY")
    assert code == 2 and "structlog" in modules
    assert loaded(modules, tuple(name for name in HEAVY_FOR_HELP if name != "structlog")) == []


def test_a_command_that_connects_leaves_the_simulator_unimported() -> None:
    # Nothing listens there: a connection failure, exit 3.
    code, modules = imported_by("orders", "--url", f"ws://127.0.0.1:{reserved_port()}", "--json")
    assert code == 3
    assert "qfex_oms.client.manager" in modules  # it did get as far as connecting
    assert loaded(modules, SIMULATOR) == []


def test_the_lazy_public_names_are_the_typed_ones_and_resolve_to_their_modules() -> None:
    tree = ast.parse((REPO / "qfex_oms" / "__init__.py").read_text())
    typed: dict[str, str] = {}
    eager: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # if TYPE_CHECKING:
            typed |= {a.name: n.module for n in node.body if isinstance(n, ast.ImportFrom) and n.module
                      for a in n.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qfex_oms"):
            eager |= {a.name for a in node.names}
    assert typed == qfex_oms._LAZY
    assert set(qfex_oms.__all__) == set(typed) | eager
    for name, module in typed.items():
        assert getattr(qfex_oms, name) is getattr(sys.modules[module], name), name
    assert set(qfex_oms.__all__) <= set(dir(qfex_oms))


def test_watch_offers_the_live_views_topics() -> None:
    from qfex_oms.app.commands import watch
    from qfex_oms.app.live import TOPICS

    assert watch.TOPICS == TOPICS


def test_the_token_ttl_shown_in_help_is_the_gateways() -> None:
    from qfex_oms.app.commands import gateway as command
    from qfex_oms.gateway import tokens

    assert (command.TOKEN_TTL_DEFAULT, command.TOKEN_TTL_MAX) == (tokens.DEFAULT_TOKEN_TTL,
                                                                  tokens.MAX_TOKEN_TTL)
