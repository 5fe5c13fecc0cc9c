"""Real receivers for the SIEM tests, on loopback ports: an HTTPS webhook receiver that checks the
signature, and a syslog collector over TCP or TLS that reads octet-counted frames until the sender
closes. The TLS certificates are made here with cryptography: a CA and a server certificate for
127.0.0.1 it signed."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path) -> Certificates:
    """A CA and a certificate for 127.0.0.1 (and localhost) signed by it, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siem test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedOnLoopback:
    """A receiver whose socket server runs on a daemon thread; ``stop`` closes its port (the sink is
    down), and ``start`` may open it again."""

    _server: socketserver.BaseServer | None

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class WebhookReceiver(ServedOnLoopback):
    """An HTTPS server that accepts POSTs whose X-Gateway-Signature verifies with ``secret``; it can
    be stopped (port closed: the sink is down) and started again on the same port."""

    certificates: Certificates
    secret: str
    port: int = field(default_factory=free_port)
    status: int = 200
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    bad_signatures: int = 0
    _server: socketserver.BaseServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/siem"

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for batch in self.batches for event in batch]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Gateway-Timestamp", "")
                expected = hmac.new(
                    receiver.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
                signature = self.headers.get("X-Gateway-Signature", "")
                if not hmac.compare_digest(signature, f"t={timestamp},v1={expected}"):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.status != 200:
                    self.send_response(receiver.status)
                else:
                    with receiver._lock:
                        receiver.batches.append(json.loads(body)["events"])
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = self.certificates.server_context().wrap_socket(server.socket, server_side=True)
        self._serve(server)
        return self


@dataclass
class SyslogCollector(ServedOnLoopback):
    """A TCP (or TLS) syslog collector: reads octet-counted frames until the sender closes, then closes."""

    certificates: Certificates | None = None
    port: int = field(default_factory=free_port)
    messages: list[bytes] = field(default_factory=list)
    _server: socketserver.BaseServer | None = None

    def start(self) -> SyslogCollector:
        collector = self
        context = self.certificates.server_context() if self.certificates else None

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                if context is not None:
                    sock = context.wrap_socket(sock, server_side=True)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                collector.messages.extend(parse_octet_counted(data))
                sock.close()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._serve(server)
        return self


def parse_octet_counted(data: bytes) -> list[bytes]:
    """The messages of an RFC 6587 octet-counted stream; AssertionError on a bad frame."""
    messages = []
    while data:
        length, space, rest = data.partition(b" ")
        assert space and length.isdigit(), f"bad frame header {data[:20]!r}"
        size = int(length)
        assert len(rest) >= size, "frame cut short"
        messages.append(rest[:size])
        data = rest[size:]
    return messages
