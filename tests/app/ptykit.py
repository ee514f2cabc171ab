"""A ``qfex-oms`` process on a real pseudo-terminal, read from a trio test without blocking it.

The child's stdout is the pty's slave side (so ``isatty()`` is true and rich draws its live view as
on a user's terminal); its stderr goes to a file, so what the test reads is the command's output.
``expect`` waits on a condition over everything read so far; the ``fail_after`` is a hang guard,
not a timed assertion.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 60.0
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]")


def plain(text: str) -> str:
    """The terminal's text without escape sequences and carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("QFEX_") and k not in ("COLUMNS", "LINES")}
    base.update(PYTHONUNBUFFERED="1", TERM="xterm-256color", **extra)
    base.pop("NO_COLOR", None)
    return base


class PtyProcess:
    def __init__(self, *args: str, stderr_path: Path, cwd: Path = REPO, rows: int = 60,
                 cols: int = 200) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.stderr_path = stderr_path
        with stderr_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "qfex_oms", *args], stdin=slave,
                                         stdout=slave, stderr=err, cwd=cwd, env=env(),
                                         start_new_session=True, close_fds=True)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        self.raw = b""

    @property
    def text(self) -> str:
        return plain(self.raw.decode("utf-8", "replace"))

    async def _read_some(self) -> bool:
        """Read what is there; False at the end (the child closed the terminal)."""
        await trio.lowlevel.wait_readable(self.master)
        try:
            chunk = os.read(self.master, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the slave side is closed
            return False
        self.raw += chunk
        return bool(chunk)

    async def expect(self, predicate: Callable[[str], Any], what: str) -> Any:
        with trio.move_on_after(HANG_GUARD):
            while not (found := predicate(self.text)):
                if not await self._read_some():
                    break
            if found:
                return found
        raise AssertionError(f"never saw {what}; exit {self.proc.poll()}\n--- terminal\n{self.text[-4000:]}"
                             f"\n--- stderr\n{self.stderr_path.read_text()[-4000:]}")

    async def finish(self, sig: int = signal.SIGINT) -> int:
        """Send ``sig``, read the terminal to its end, and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        with trio.move_on_after(HANG_GUARD):
            while await self._read_some():
                pass
        code = await trio.to_thread.run_sync(lambda: self.proc.wait(timeout=HANG_GUARD))
        return int(code)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
