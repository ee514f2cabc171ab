"""The package as a user installs it: a wheel in a clean venv, run from a directory with no checkout.

Offline-capable: the wheel is built without build isolation (the test extras hold setuptools and
wheel), and its dependencies are repacked as wheels from this venv's installed distributions (RECORD
lists every file), so ``pip install --no-index --find-links`` needs no network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from packaging.requirements import Requirement

# One xdist worker builds the wheel and its venv (the module fixture) and runs both tests.
pytestmark = pytest.mark.xdist_group("wheel")

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("qfex_oms", "strategies", "config", "pyproject.toml", "setup.py", "README.md", "LICENSE")
_DROPPED = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def _closure(names: list[str]) -> list[md.Distribution]:
    """The installed distributions ``names`` need, transitively (extras and foreign markers left out)."""
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        requirement = Requirement(todo.pop())
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in seen or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen[key] = dist = md.distribution(requirement.name)
        todo += dist.requires or []
    return list(seen.values())


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _repack(dist: md.Distribution, into: Path) -> None:
    """A wheel of an installed distribution: the files its RECORD lists (scripts and caches left out)."""
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip().split("-") for line in wheel_meta.splitlines()
            if line.startswith("Tag:")]
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))  # py2.py3-none-any
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    info = f"{name}-{dist.version}.dist-info"
    records = []
    with zipfile.ZipFile(into / f"{name}-{dist.version}-{tag}.whl", "w") as wheel:
        for entry in dist.files or ():
            path = entry.as_posix()
            if path.startswith("..") or "__pycache__" in path or path.split("/")[-1] in _DROPPED:
                continue
            data = Path(str(entry.locate())).read_bytes()
            if path.split("/")[0].endswith(".dist-info"):
                path = f"{info}/{path.split('/', 1)[1]}"
            wheel.writestr(path, data)
            records.append(_record_line(path, data))
        wheel.writestr(f"{info}/RECORD", "\n".join([*records, f"{info}/RECORD,,"]) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the built wheel and nothing of the checkout; yields its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    source, wheels, venv = root / "source", root / "wheels", root / "venv"
    source.mkdir()
    wheels.mkdir()
    for name in SOURCES:  # a copy: the build's build/ and egg-info stay out of the checkout
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels,
                    source], check=True, capture_output=True)
    built = next(wheels.glob("qfex_oms-*.whl"))
    for dist in _closure(md.distribution("qfex_oms").requires or []):
        _repack(dist, wheels)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    subprocess.run([*pip, "--python", venv / "bin" / "python", "install", "--no-index", "--find-links",
                    wheels, built], check=True, capture_output=True)
    yield venv / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QFEX_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(NO_COLOR="1", COLUMNS="200")
    return subprocess.run([bin_dir / "qfex-oms", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=60, check=False)


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_the_wheel_carries_the_examples_and_configs_and_the_version(installed: Path, tmp_path: Path) -> None:
    # qfex_oms.__version__ once qfex_oms/__init__.py re-exports it; qfex_oms._version holds it either way.
    probe = ("import qfex_oms, qfex_oms._version as v, qfex_oms.app.bundled as b; print(qfex_oms.__file__); "
             "print(getattr(qfex_oms, '__version__', v.__version__)); "
             "print(b.example_names()); print(b.config_file('uat.toml'))")
    proc = subprocess.run([installed / "python", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          check=False)
    assert proc.returncode == 0, _explain(proc)
    module, version, examples, uat = proc.stdout.splitlines()
    assert str(REPO) not in module and "site-packages" in module
    assert version == md.version("qfex_oms")
    assert examples == str(sorted(path.stem for path in (REPO / "strategies").glob("*.py")))  # all shipped
    assert "site-packages" in uat and uat.endswith("qfex_oms/configs/uat.toml")
    out = _run(installed, "--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"qfex-oms {version}", _explain(out)


def test_demo_check_and_run_work_from_another_directory(installed: Path, tmp_path: Path) -> None:
    demo = _run(installed, "demo", cwd=tmp_path)  # the one end-to-end demo run of the suite
    assert demo.returncode == 0 and "demo OK" in demo.stdout, _explain(demo)
    for row in ("orders placed", "cancelled by order_id", "cancelled by client_order_id",
                "cancelled by twap_id", "cancelled by client_twap_id", "live market", "kill switch",
                "snapshot clean", "reconciliation (manager)", "0 differences"):
        assert row in demo.stdout, row
    assert not [w for w in ("qfex_secret_demo", "signature") for t in (demo.stdout, demo.stderr)
                if w in t.lower()], "a secret or a signature reached the demo's output"
    run = _run(installed, "run", "strategies/quoter.py", "-p", "cycles=2", "--json", cwd=tmp_path)
    assert run.returncode == 0, _explain(run)
    assert orjson.loads(run.stdout)["result"]["quotes"] == 4
    check = _run(installed, "check", "--json", cwd=tmp_path)
    assert check.returncode == 0 and orjson.loads(check.stdout)["authenticated"], _explain(check)
