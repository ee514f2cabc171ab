"""The user documentation builds, strictly, and covers the public API.

``mkdocs build --strict`` turns every warning into an error, and mkdocstrings fails on a
``::: qfex_oms.NAME`` whose object does not exist: a function renamed in the code without its page
breaks this test (the last test shows it does). And every name ``qfex_oms`` exports has its entry in
the API reference, so a new public name cannot go undocumented.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import qfex_oms

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference"


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, cwd=REPO, timeout=120,
                          check=False)


def test_the_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    proc = build(REPO / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "reference" / "manager" / "index.html").read_text()
    # The reference is generated from the docstrings: place_order's own words are on the page.
    assert "place_order" in page and "Place an order; return it once QFEX has ACKed it" in page


def test_every_public_name_has_its_reference_entry() -> None:
    documented = {match for page in REFERENCE.glob("*.md")
                  for match in re.findall(r"^::: qfex_oms\.(\w+)$", page.read_text(), re.MULTILINE)}
    public = {name for name in qfex_oms.__all__ if not name.startswith("__")}
    assert public - documented == set(), "add these to a page of docs/reference/"


def test_a_page_naming_a_missing_function_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(REPO / "docs"), str(docs)], check=True)
    (docs / "reference" / "manager.md").write_text("# Renamed\n\n::: qfex_oms.open_order_manager_renamed\n")
    config = (REPO / "mkdocs.yml").read_text()
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}").replace("paths: [.]", f"paths: [{REPO}]")
    (tmp_path / "mkdocs.yml").write_text(config)
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "open_order_manager_renamed" in proc.stderr
