"""Session ids are sealed for the credential and target that opened them, without a store."""

from __future__ import annotations

import base64
import socket
from urllib.parse import urlsplit

import httpx2
import orjson
import pytest

from gateway.proxy.sessions import SessionMalformed, SessionNotOwned, bind_session, unbind_session
from tests.conftest import issue_credential


def test_bound_session_id_unbinds_for_its_owner_only():
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    assert unbind_session(credential_id=1, target_id=2, agent_id=agent_id) == "abc123"
    with pytest.raises(SessionNotOwned):
        unbind_session(credential_id=9, target_id=2, agent_id=agent_id)
    with pytest.raises(SessionNotOwned):
        unbind_session(credential_id=1, target_id=3, agent_id=agent_id)


def _encodings(upstream_id: str) -> set[str]:
    raw = upstream_id.encode()
    forms = {
        upstream_id,
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b32encode(raw).decode(),
        base64.b16encode(raw).decode(),
        base64.a85encode(raw).decode(),
        base64.b85encode(raw).decode(),
    }
    # Unpadded variants, and the forms of the id shifted by one and two bytes inside a longer text.
    forms |= {form.rstrip("=") for form in list(forms)}
    for shift in (1, 2):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            shifted = encode(b"\x00" * shift + raw).decode().rstrip("=")
            forms.add(shifted[4:-4])  # the middle, away from the bytes that mix with neighbours
    return {form for form in forms if len(form) >= 8}


def test_the_agent_id_does_not_contain_the_upstream_id_in_any_encoding():
    upstream_id = "a1b2c3d4e5f6-upstream-session-0123456789abcdef"
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id=upstream_id)
    for form in _encodings(upstream_id):
        assert form.lower() not in agent_id.lower(), form
    decoded = base64.urlsafe_b64decode(agent_id.partition(".")[2] + "==")
    assert upstream_id.encode() not in decoded


def test_the_same_upstream_session_gets_a_fresh_looking_id_each_time():
    first = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    second = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    assert first != second  # a random nonce: ids cannot be compared to link sessions
    assert unbind_session(credential_id=1, target_id=2, agent_id=second) == "abc123"


def test_a_tampered_id_is_not_found():
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    version, _, sealed = agent_id.partition(".")
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=="))
    for position in (0, 14, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        forged = f"{version}.{base64.urlsafe_b64encode(bytes(flipped)).rstrip(b'=').decode()}"
        with pytest.raises(SessionMalformed):
            unbind_session(credential_id=1, target_id=2, agent_id=forged)


def test_an_id_sealed_with_another_secret_key_is_not_found(settings):
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    settings.SECRET_KEY = "another-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(SessionMalformed):
        unbind_session(credential_id=1, target_id=2, agent_id=agent_id)


def test_an_id_issued_before_a_secret_key_rotation_still_opens(settings):
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    assert unbind_session(credential_id=1, target_id=2, agent_id=agent_id) == "abc123"


@pytest.mark.parametrize(
    "agent_id",
    [
        "plain-upstream-id",
        ".",
        "s1.",
        "!!!.tag",
        "s1.!!!!",
        "s1." + "A" * 40,
        "s1." + "A" * 10_000,
        "s1.\u00e9\u00e8\u00ea",
        "\u00c3\u00a9t\u00c3\u00a9",
        "s1.AAAA\x00AAAA",
    ],
)
def test_ids_the_gateway_never_issued_are_malformed(agent_id):
    with pytest.raises(SessionMalformed):
        unbind_session(credential_id=1, target_id=2, agent_id=agent_id)


def _raw_post(url: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, dict]:
    """One HTTP/1.1 POST with header bytes sent exactly as given (an HTTP client would refuse them)."""
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1".encode(), f"Host: {parts.hostname}:{parts.port}".encode()]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Type: application/json", b"Accept: application/json, text/event-stream"]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, payload = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(payload)


@pytest.mark.parametrize(
    "session_id",
    [b"\xc3\xa9t\xc3\xa9", b"\xff\xfe", b"s1.\xe9\xe8", b"abc.def", b"s1." + b"A" * 60],
    ids=["utf8-accents", "latin1-bytes", "versioned-latin1", "old-format", "never-issued"],
)
def test_a_malformed_session_id_is_404_session_not_found_never_500(gateway, tenant, target, session_id):
    issued = issue_credential(tenant, target, "POST /tools/search")
    body = orjson.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    headers = [(b"Authorization", f"Bearer {issued.token}".encode()), (b"Mcp-Session-Id", session_id)]
    status, reply = _raw_post(gateway.proxy_url("docs"), headers, body)
    assert status == 404
    assert reply["id"] == 3
    assert reply["error"]["message"] == "Session not found: start a new session"


def test_a_session_id_presented_for_another_target_is_403(gateway, tenant, target, upstream):
    from gateway.services import target_create

    other = target_create(tenant=tenant, slug="other", upstream_url=upstream.url)
    issued = issue_credential(tenant, target, "POST /tools/search")
    issued.credential.targets.add(other)
    agent_id = bind_session(credential_id=issued.credential.id, target_id=target.id, upstream_id="abc")
    response = httpx2.post(
        gateway.proxy_url("other"),
        content=orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        headers={
            "Authorization": f"Bearer {issued.token}",
            "Mcp-Session-Id": agent_id,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=10,
    )
    assert response.status_code == 403
    assert "another credential" in response.json()["error"]["message"]
