"""`python -m qfex_oms demo` end to end, as `make demo` runs it."""

from __future__ import annotations

import subprocess
import sys

from clikit import REPO, cli_env, explain, secrets_in


def test_the_demo_runs_end_to_end() -> None:
    proc = subprocess.run([sys.executable, "-m", "qfex_oms", "demo"], capture_output=True, text=True,
                          timeout=60, env=cli_env(), cwd=REPO, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, explain(proc)
    assert "demo OK" in proc.stdout
    for row in ("orders placed", "cancelled by order_id", "cancelled by client_order_id",
                "cancelled by twap_id", "cancelled by client_twap_id", "kill switch",
                "reconciliation (manager)", "0 differences"):
        assert row in proc.stdout, row
    assert "snapshot clean" in proc.stdout
    assert secrets_in([proc.stdout, proc.stderr]) == []
