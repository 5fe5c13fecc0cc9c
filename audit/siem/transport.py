"""What the three transports share: the error a failed delivery raises, and connecting only where the
upstream address policy (gateway/egress.py) allows."""

from __future__ import annotations

import ipaddress
import socket
import ssl

from gateway.egress import EgressRefused, egress_policy


class DeliveryError(Exception):
    """A batch the sink did not acknowledge; the message says why and never holds a secret."""


def describe(exc: BaseException) -> str:
    """A short, secret-free account of a transport failure (no URL, no payload)."""
    if isinstance(exc, EgressRefused | DeliveryError):
        return str(exc)[:300]
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"[:300]
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"[:300]
    return type(exc).__name__


def tls_context(ca_file: str) -> ssl.SSLContext:
    """A client context that verifies the peer (against ``ca_file`` when given), TLS 1.2 or newer."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def connect_allowed(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``host`` at an address the egress policy allows (judged on the addresses
    resolved now, and connected to exactly those, so a name re-pointed meanwhile is not followed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {host!r}: {describe(exc)}") from None
    policy = egress_policy()
    reasons: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _, address in infos:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        reason = policy.refusal(host, ip)
        if reason is not None:
            reasons.append(reason)
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    if last_error is not None:
        raise DeliveryError(f"cannot connect to {host}:{port}: {describe(last_error)}")
    raise EgressRefused(f"sink host {host!r} refused: {'; '.join(reasons) or 'no address'}")
