"""The files shipped inside the package: the example strategies and the configs.

In the checkout they are ``strategies/*.py`` and ``config/*.toml``; the wheel carries them as the
packages ``qfex_oms.examples`` and ``qfex_oms.configs`` (setup.py maps the directories), read here
through ``importlib.resources``, so ``qfex-oms demo`` and the default config work from an installed
wheel anywhere. An editable install cannot import those two (setuptools' editable finder does not
map a namespace package nested in a regular one): there the checkout's directories are used.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

EXAMPLES = "qfex_oms.examples"
CONFIGS = "qfex_oms.configs"
_CHECKOUT = {EXAMPLES: "strategies", CONFIGS: "config"}

# A zipped install hands out temporary copies; they live until the process exits.
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def _root(package: str) -> Traversable:
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / _CHECKOUT[package]


def _file(package: str, name: str) -> Path | None:
    entry = _root(package) / name
    if not entry.is_file():
        return None
    return _EXTRACTED.enter_context(resources.as_file(entry))


def example_strategy(name: str) -> Path | None:
    """The bundled example strategy ``name`` (``quoter.py`` or ``quoter``) as a file, or None."""
    return _file(EXAMPLES, name if name.endswith(".py") else f"{name}.py")


def example_names() -> list[str]:
    """The bundled example strategies, e.g. ``["kill_drill", "quoter", "rebalancer"]``."""
    return sorted(e.name.removesuffix(".py") for e in _root(EXAMPLES).iterdir()
                  if e.name.endswith(".py") and not e.name.startswith("_"))


def config_file(name: str) -> Path | None:
    """The bundled config ``name`` (``sim.toml``) as a file, or None."""
    return _file(CONFIGS, name)


def existing_or_bundled(path: str | Path) -> Path:
    """``path`` when it exists; else, for ``config/NAME`` or ``strategies/NAME`` (relative, as the
    README writes them), the bundled file of that name, so the README's commands work from any
    directory; else ``path`` unchanged (its absence is reported by whoever opens it)."""
    given = Path(path)
    if given.exists() or given.is_absolute() or len(given.parts) != 2:
        return given
    folder, name = given.parts
    package = {"config": CONFIGS, "strategies": EXAMPLES}.get(folder)
    found = None if package is None else _file(package, name)
    return found or given
