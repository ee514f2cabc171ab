"""With --certfile/--keyfile the gateway speaks wss:// (a self-signed certificate from openssl)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import orjson
import pytest
from gwkit import CONFIG, MM, gateway_on
from trio_websocket import open_websocket_url

from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _certificate(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "gw.pem", tmp / "gw.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls_gateway_serves_wss(venue: Venue, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    config = CONFIG.__class__(CONFIG.clients, port=0, certfile=str(cert), keyfile=str(key))
    async with gateway_on(venue, config) as gw:
        assert gw.url.startswith("wss://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        async with open_websocket_url(f"{gw.url}?api_key={MM.public_key}", ssl_context=context) as ws:
            await ws.send_message(encode(make_auth(MM.public_key, MM.secret)).decode())
            assert orjson.loads(await ws.get_message()) == {"authenticated": True}
