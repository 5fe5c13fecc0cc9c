"""Syslog delivery: RFC 5424 messages over TCP or TLS, octet-counting framing (RFC 6587).

Syslog has no application-level acknowledgement, so a batch counts as delivered only when the
collector has read all of it: the gateway sends the batch on a fresh connection, closes its sending
side and waits (up to the timeout) for the collector to close the connection, which it does once it
has read to the end (rsyslog and syslog-ng do). A connection reset, a timeout or a collector that
never closes leaves the cursor where it was; the batch is sent again later.
"""

from __future__ import annotations

import socket
import time

from audit.siem.config import SyslogConfig
from audit.siem.records import SiemRecord, syslog_frame
from audit.siem.transport import DeliveryError, connect_allowed, describe, tls_context

_READ_CHUNK = 4096
_MAX_DISCARD = 1 << 20  # what a collector may send back before closing (it should send nothing)


def send_syslog(config: SyslogConfig, records: list[SiemRecord]) -> None:
    """Send ``records`` to the collector and wait for it to have read them; DeliveryError otherwise."""
    payload = b"".join(
        syslog_frame(record, facility=config.facility, app_name=config.app_name) for record in records
    )
    timeout = config.delivery.timeout_seconds
    sock = connect_allowed(config.host, config.port, timeout)
    try:
        if config.tls:
            sock = tls_context(config.ca_file).wrap_socket(sock, server_hostname=config.host)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        _await_close(sock, time.monotonic() + timeout)
    except OSError as exc:
        raise DeliveryError(f"syslog {config.host}:{config.port}: {describe(exc)}") from None
    finally:
        sock.close()


def _await_close(sock: socket.socket, deadline: float) -> None:
    """Read (and drop) until the collector closes; TimeoutError past ``deadline``."""
    received = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(_READ_CHUNK)
        if not chunk:
            return
        received += len(chunk)
        if received > _MAX_DISCARD:
            raise DeliveryError("the collector keeps sending instead of closing")
