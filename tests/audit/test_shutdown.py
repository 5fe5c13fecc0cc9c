"""A gateway stopped (SIGTERM) while its database is down neither hangs nor loses its events."""

from __future__ import annotations

import signal
import time

import httpx2

from tests.audit.test_crash import WalGatewayProcess
from tests.metering.conftest import JSONRPC_HEADERS
from tests.servers import free_port


def test_a_gateway_stopped_while_its_database_is_down_exits_and_keeps_its_events(tmp_path):
    dead_database = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    gateway = WalGatewayProcess(wal_dir=tmp_path, database_url=dead_database)
    try:
        gateway.wait_ready()
        response = httpx2.post(gateway.proxy_url("docs"), content=b"{}", headers=JSONRPC_HEADERS, timeout=30)
        assert response.status_code == 503
        started = time.monotonic()
        gateway.popen.send_signal(signal.SIGTERM)
        gateway.popen.wait(30)
        assert time.monotonic() - started < 20
    finally:
        gateway.stop()
    lines = b"".join(path.read_bytes() for path in tmp_path.glob("*.wal")).splitlines()
    assert len(lines) == 1 and b'"status_code":503' in lines[0]
