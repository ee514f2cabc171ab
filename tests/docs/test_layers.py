"""The folders are the layers (README "How it is built"): each floor imports only floors below it.

Read from the source with ``ast`` (imports inside functions and under TYPE_CHECKING count too), so a
new import that points upwards fails here, naming the file and the module it reached for.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "qfex_oms"
LEAVES = {"errors", "logs", "wsfix"}  # any floor may import these
# What each floor may import besides itself and the leaves.
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "core": {"protocol"},
    "journal": {"protocol", "core"},
    "client": {"protocol", "core", "journal"},
    "gateway": {"protocol", "core", "journal", "client"},
    "app": {"protocol", "core", "journal", "client", "sim", "gateway"},
    "sim": {"protocol"},
}


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qfex_oms"):
            parts = node.module.split(".")
            if len(parts) == 1:  # from qfex_oms import x: x is the module reached for
                names.extend(alias.name for alias in node.names)
            else:
                names.append(parts[1])
        elif isinstance(node, ast.Import):
            names.extend(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("qfex_oms.") and "." in a.name)
    return names


def test_every_floor_imports_only_floors_below_it() -> None:
    wrong = []
    for floor, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / floor).rglob("*.py")):
            for target in _imported(ast.parse(path.read_text())):
                if target not in allowed | LEAVES | {floor}:
                    wrong.append(f"{path.relative_to(PACKAGE.parent)} imports qfex_oms.{target}")
    assert not wrong, "\n".join(wrong)


def test_the_leaves_import_nothing_of_the_package() -> None:
    # errors.py names Order, Twap and StopOrder in annotations, under TYPE_CHECKING only.
    type_only = {"errors": ["core", "core"]}  # core.model and core.stops
    for leaf in LEAVES:
        assert _imported(ast.parse((PACKAGE / f"{leaf}.py").read_text())) == type_only.get(leaf, []), leaf
