"""The gateway's pure parts: namespaces, client auth, the [gateway] table, the fair queue's order."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from qfex_oms.gateway.auth import NonceStore, check_hmac
from qfex_oms.gateway.config import GatewayConfigError, parse_gateway
from qfex_oms.gateway.fair import FairQueue
from qfex_oms.gateway.namespace import MAX_CLIENT_SUFFIX, split, wrap
from qfex_oms.protocol import make_auth
from qfex_oms.protocol.limits import Bucket


def test_namespaces_round_trip_and_stay_within_the_client_id_limit() -> None:
    assert wrap("mm", "bid-1") == "mm:bid-1"
    assert split("mm:bid-1") == ("mm", "bid-1")
    assert split("mm:arb:bid-1") == ("mm", "arb:bid-1")  # a client's own ':' survives
    assert split("bid-1") == (None, "bid-1")
    assert split("twap:5b30:1") == (None, "twap:5b30:1")  # QFEX names TWAP children: reserved
    generated = wrap("mm", None)
    assert split(generated)[0] == "mm" and len(split(generated)[1]) == 32
    assert MAX_CLIENT_SUFFIX >= 32  # QFEX's CLI and this package generate 32 characters


def test_client_auth_is_qfex_hmac_with_replay_refused() -> None:
    nonces, now = NonceStore(), 1_760_545_414
    frame = make_auth("gw_pub", "secret", unix_ts=now, nonce="c0ffee")
    assert check_hmac(frame, "gw_pub", "wrong", nonces, now) == "bad signature"
    assert check_hmac(frame, "gw_pub", "secret", nonces, now) is None
    assert check_hmac(frame, "gw_pub", "secret", nonces, now + 1) == "nonce already used"
    late = make_auth("gw_pub", "secret", unix_ts=now - 3600)
    assert check_hmac(late, "gw_pub", "secret", nonces, now) == "unix_ts outside the accepted clock skew"
    other = make_auth("other", "secret", unix_ts=now)
    assert check_hmac(other, "gw_pub", "secret", nonces, now) is not None


def _doc(**client: object) -> dict[str, object]:
    base = {"public_key": "p", "secret_env": "S", "strategy": "mm"}
    return {"gateway": {"port": 0, "client": [{**base, **client}]}}


def test_the_gateway_table_is_checked_strictly() -> None:
    config = parse_gateway(_doc(may_kill_account=True), {"S": "secret"})
    assert config.clients[0].secret == "secret" and config.clients[0].may_kill_account
    with pytest.raises(GatewayConfigError, match="S is unset"):
        parse_gateway(_doc(), {})
    with pytest.raises(GatewayConfigError, match=r"unknown key gateway\.client\[0\]\.colour"):
        parse_gateway(_doc(colour="red"), {"S": "x"})
    with pytest.raises(GatewayConfigError, match="strategy"):
        parse_gateway(_doc(strategy="has:colon"), {"S": "x"})
    with pytest.raises(GatewayConfigError, match="not 'twap'"):  # QFEX's TWAP children's prefix
        parse_gateway(_doc(strategy="TWAP"), {"S": "x"})
    with pytest.raises(GatewayConfigError, match="expected bool"):
        parse_gateway(_doc(may_kill_account="yes"), {"S": "x"})
    with pytest.raises(GatewayConfigError, match=r"no \[gateway\]"):
        parse_gateway({}, {})


def test_the_apps_loader_reads_a_file_with_gateway_tables(tmp_path: Path) -> None:
    """One file serves both: the app's loader leaves [gateway] to the gateway's (no copy cut out)."""
    from qfex_oms.app.config import load_config

    path = tmp_path / "gw.toml"
    path.write_text('[exchange]\nurl = "ws://127.0.0.1:1"\n[gateway]\nport = 1\n'
                    '[[gateway.client]]\nstrategy = "a"\n[manager]\nrequest_timeout = 3\n')
    config = load_config(path)
    assert (config.url, config.manager) == ("ws://127.0.0.1:1", {"request_timeout": 3})


async def test_the_fair_queue_serves_clients_in_turn_one_slot_at_a_time() -> None:
    served: list[str] = []
    gate = trio.Event()

    def job(name: str) -> object:
        async def run() -> None:
            served.append(name)
            await gate.wait()
        return run

    async with trio.open_nursery() as nursery:
        fair = FairQueue(nursery)
        for n in range(5):
            fair.submit("flood", Bucket.CANCEL, job(f"flood-{n}"))  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        fair.submit("other", Bucket.CANCEL, job("other"))  # type: ignore[arg-type]
        fair.submit("orders", Bucket.GENERAL, job("order"))  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert served == ["flood-0", "order"]  # one slot per bucket; orders never wait for cancels
        fair.frame_written(Bucket.CANCEL)  # flood-0's frame went out: the next is the newcomer's
        await trio.testing.wait_all_tasks_blocked()
        assert served[-1] == "other"
        fair.frame_written(Bucket.CANCEL)
        await trio.testing.wait_all_tasks_blocked()
        assert served[-1] == "flood-1"
        assert fair.forget("flood") == 3
        gate.set()
