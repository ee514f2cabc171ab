"""A port a test picks before anything listens on it: a simulator restarted on the same port, a
metrics endpoint, a URL that must refuse connections.

Binding port 0 and closing the socket hands back a port of the kernel's ephemeral range, which the
kernel may give to another socket (an outgoing connection of a parallel test worker, another
``--port 0`` server) before the test binds it again. ``reserved_port`` draws instead from below that
range, where the kernel never allocates on its own; each xdist worker (``make test`` runs
several) draws from a slice of its own, and a port is returned only if it can be bound right now.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOWEST = 20_000
SLICE = 1_500  # ports per worker; 8 slices end at 32,000, under Linux's default 32,768
SLICES = 8
_random = random.SystemRandom()  # not the global random: hypothesis seeds that one


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere the range is usually higher still


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reserved_port() -> int:
    """A loopback port nothing listens on, outside the kernel's ephemeral range when it can be."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = LOWEST + (int(worker) % SLICES if worker.isdigit() else 0) * SLICE
    if low + SLICE > _ephemeral_floor():  # an unusual range that covers ours: the kernel's choice
        return _kernel_port()
    for _ in range(100):
        port = _random.randrange(low, low + SLICE)
        if _bindable(port):
            return port
    return _kernel_port()
