"""The README's example must run as written: it is what a new user copies first."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rejected: INVALID_TICK_SIZE_PRECISION_PRICE" in done.stdout
    assert "CANCELLED" in done.stdout and "True" in done.stdout


def test_readme_starts_with_the_two_make_commands() -> None:
    first_block = README.read_text().split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands[:2] == ["make demo", "make test"]
