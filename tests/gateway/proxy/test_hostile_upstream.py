"""A hostile upstream is bounded: huge events and bodies, a drip and a redirect elsewhere neither
stall nor bloat the gateway, and what they cost an agent is audited.

The hostile upstream (hostile_upstream.py) runs in its own process. The acceptance scenario runs
the gateway in its own process too, so its peak RSS and its latency for other calls are its own.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import orjson
import pytest

from audit.models import AuditEvent
from gateway.models import Target
from gateway.services import credential_create, target_create
from tests.conftest import Gateway, gateway_configured, issue_credential
from tests.metering.processes import GatewayProcess, Process, process_env
from tests.servers import free_port

HOSTILE = Path(__file__).with_name("hostile_upstream.py")
MB = 1024 * 1024
JSONRPC_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
TOOLS_LIST = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
TOOLS_CALL = orjson.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {}}}
)


class HostileUpstream(Process):
    def __init__(self) -> None:
        self.port = free_port()
        super().__init__([sys.executable, str(HOSTILE), str(self.port)], dict(os.environ))
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.popen.poll() is not None:
                    raise RuntimeError(f"hostile upstream did not start: {self.output()}") from None
                time.sleep(0.05)

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}"


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileUpstream]:
    upstream = HostileUpstream()
    yield upstream
    upstream.stop()


def _targets(tenant, hostile: HostileUpstream, *kinds: str, http: tuple[str, ...] = ()) -> str:
    """One target per hostile behaviour (an MCP target is one endpoint), and a credential for all."""
    targets = [target_create(tenant=tenant, slug=kind, upstream_url=hostile.url(kind)) for kind in kinds]
    targets += [
        target_create(tenant=tenant, slug=kind, kind="http", upstream_url=hostile.url(kind)) for kind in http
    ]
    rules = [("POST", "/tools/search"), ("GET", "/**")]
    return credential_create(tenant=tenant, name="agent", targets=targets, allow=rules).token


def _post(url: str, token: str, body: bytes, timeout: float = 30) -> httpx2.Response:
    headers = {**JSONRPC_HEADERS, "Authorization": f"Bearer {token}"}
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)


def _stream(
    url: str, token: str, body: bytes | None, *, method: str = "POST", give_up: float = 25
) -> tuple[int, int, float]:
    """Status, bytes received and seconds taken by a call whose reply is read as a stream, given up
    after ``give_up`` seconds."""
    headers = {**JSONRPC_HEADERS, "Authorization": f"Bearer {token}"}
    started = time.monotonic()
    received = 0
    with httpx2.stream(method, url, content=body, headers=headers, timeout=30) as response:
        try:
            for chunk in response.iter_bytes():
                received += len(chunk)
                if time.monotonic() - started > give_up:
                    break
        except httpx2.HTTPError:
            pass  # a stream the gateway ends abruptly still counts as ended
        return response.status_code, received, time.monotonic() - started


def _audited(slug: str, count: int = 1, timeout: float = 20) -> list[AuditEvent]:
    """The ``count`` audit events of ``slug``'s calls, once the gateway process has written them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = list(AuditEvent.objects.filter(target_slug=slug).order_by("created_at", "id"))
        if len(events) >= count:
            return events
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} audit event(s) for {slug!r}")


# --- the acceptance scenario: gateway in its own process -------------------------------------------


class GatewayWithEnv(GatewayProcess):
    """GatewayProcess with extra environment variables (the GATEWAY_* limits under test)."""

    def __init__(self, *, redis_url: str, **env: str) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "uvicorn", "gateway.asgi:application", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--lifespan", "on", "--log-level", "warning"]
        Process.__init__(self, args, process_env(redis_url=redis_url, **env))

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.popen.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


DEADLINE = 6.0  # long enough for 300 MB to stream through on a loaded machine (about 1 s idle)


def test_a_hostile_upstream_neither_stalls_nor_bloats_the_gateway(
    transactional_db, tenant, hostile, settings
):
    # given: a gateway process with a short deadline, and one target per hostile behaviour
    normal_upstream = HostileUpstream()
    gateway = GatewayWithEnv(
        redis_url=settings.REDIS_URL or "", GATEWAY_UPSTREAM_DEADLINE_SECONDS=str(DEADLINE)
    )
    try:
        kinds = ("huge-event", "huge-json", "huge-json-chunked", "drip")
        token = _targets(tenant, hostile, *kinds, http=("redirect-away",))
        normal = target_create(tenant=tenant, slug="normal", upstream_url=normal_upstream.url("normal"))
        token_normal = issue_credential(tenant, normal, "POST /tools/search", name="prober").token
        gateway.wait_ready()
        url = gateway.proxy_url
        assert _post(url("normal"), token_normal, TOOLS_CALL).status_code == 200

        # when: the hostile calls run while an agent keeps calling a normal target
        stop = threading.Event()
        latencies: list[float] = []

        def probe() -> None:
            with httpx2.Client(headers={**JSONRPC_HEADERS, "Authorization": f"Bearer {token_normal}"}) as c:
                while not stop.is_set():
                    started = time.monotonic()
                    assert c.post(url("normal"), content=TOOLS_CALL, timeout=30).status_code == 200
                    latencies.append(time.monotonic() - started)
                    time.sleep(0.05)

        with ThreadPoolExecutor(9) as pool:
            probing = pool.submit(probe)
            redirect = pool.submit(
                httpx2.get, url("redirect-away"), headers={"Authorization": f"Bearer {token}"}
            )
            event = pool.submit(_stream, url("huge-event"), token, TOOLS_CALL)
            listing = pool.submit(_post, url("huge-json"), token, TOOLS_LIST)
            listing_chunked = pool.submit(_post, url("huge-json-chunked"), token, TOOLS_LIST)
            streamed = pool.submit(_stream, url("huge-json"), token, TOOLS_CALL)
            drip_listing = pool.submit(_stream, url("drip"), token, TOOLS_LIST)
            drip_streamed = pool.submit(_stream, url("drip"), token, TOOLS_CALL)
            try:
                results = [f.result(60) for f in (event, listing, listing_chunked, streamed)]
                results += [f.result(60) for f in (drip_listing, drip_streamed, redirect)]
            finally:
                stop.set()
            probing.result(30)
        peak = gateway.peak_rss_mib()
    finally:
        gateway.stop()
        normal_upstream.stop()
    event_result, listing_reply, listing_chunked_reply, streamed_result, drip_listing, drip_streamed = (
        results[:6]
    )
    redirect_reply = results[6]

    # then: other calls kept their latency and the gateway's memory stayed bounded
    assert len(latencies) >= 20 and max(latencies) < 1.0, f"worst {max(latencies):.2f} s"
    assert peak < 250, f"gateway peak RSS {peak:.0f} MiB"
    # the oversized event ended the stream after at most one maximum event (8 MiB by default)
    assert event_result[0] == 200 and event_result[1] <= 8 * MB + 64 * 1024
    # a listing that must be trimmed is too big to parse: 502, whether its length was declared or not
    for reply in (listing_reply, listing_chunked_reply):
        assert reply.status_code == 502
        assert reply.json()["error"]["code"] == -32012
        assert "GATEWAY_MAX_RESPONSE_BODY_BYTES" in reply.json()["error"]["message"]
    # a body no step reads streamed through whole
    assert streamed_result[:2] == (200, 300 * MB)
    # the drip ended near its deadline: 504 before the status was sent, the stream's end after
    assert drip_listing[0] == 504 and DEADLINE - 0.5 < drip_listing[2] < DEADLINE + 3
    assert drip_streamed[0] == 200 and DEADLINE - 0.5 < drip_streamed[2] < DEADLINE + 3
    # an upstream's redirect to another host never names that host to the agent
    assert redirect_reply.status_code == 302
    assert "location" not in redirect_reply.headers and "content-location" not in redirect_reply.headers
    # and each is audited as an error with its reason
    assert "GATEWAY_MAX_EVENT_BYTES" in _audited("huge-event")[0].reason
    assert {e.decision for e in _audited("huge-json-chunked")} == {"error"}
    drips = _audited("drip", count=2)
    assert len(drips) == 2 and all("GATEWAY_UPSTREAM_DEADLINE_SECONDS" in e.reason for e in drips)
    assert all(e.decision == "error" for e in drips)


# --- one behaviour each: the gateway in this process, with small limits ---------------------------

SMALL_DEADLINE = 2.0


@pytest.fixture
def limited_gateway(transactional_db, settings) -> Iterator[Gateway]:
    """A gateway (uvicorn, in a thread) with a 2 s deadline, 256 KiB events and 1 MiB JSON bodies."""
    with gateway_configured(
        settings,
        UPSTREAM_DEADLINE_SECONDS=str(SMALL_DEADLINE),
        MAX_EVENT_BYTES=str(256 * 1024),
        MAX_RESPONSE_BODY_BYTES=str(MB),
    ) as server:
        yield server


def _audit(gateway: Gateway, slug: str) -> AuditEvent:
    gateway.flush_audit()
    [event] = AuditEvent.objects.filter(target_slug=slug)
    return event


def test_a_redirect_inside_the_target_is_rewritten_to_the_proxy_url(limited_gateway, tenant, hostile):
    token = _targets(tenant, hostile, http=("redirect-inside",))

    reply = httpx2.get(limited_gateway.proxy_url("redirect-inside"), headers={"X-API-Key": token})

    assert reply.status_code == 302
    assert reply.headers["location"] == "/mcp/redirect-inside/next?page=2"
    assert "content-location" not in reply.headers  # it named a path outside the target's base


def test_a_listing_too_big_to_parse_is_a_502_and_audited(limited_gateway, tenant, hostile):
    token = _targets(tenant, hostile, "huge-json-chunked")

    reply = _post(limited_gateway.proxy_url("huge-json-chunked"), token, TOOLS_LIST)

    assert reply.status_code == 502
    assert reply.json()["error"]["message"] == (
        "Upstream of target 'huge-json-chunked' sent a JSON body larger than "
        f"GATEWAY_MAX_RESPONSE_BODY_BYTES ({MB} bytes)"
    )
    assert "secret_tool" not in reply.text
    event = _audit(limited_gateway, "huge-json-chunked")
    assert (event.decision, event.status_code, event.upstream_status) == ("error", 502, 200)


def test_an_oversized_event_ends_the_stream_and_the_audit_says_why(limited_gateway, tenant, hostile):
    token = _targets(tenant, hostile, "huge-event")

    status, received, _ = _stream(limited_gateway.proxy_url("huge-event"), token, TOOLS_CALL)

    assert (status, received) == (200, 0)  # the event never completed, so none of it was relayed
    event = _audit(limited_gateway, "huge-event")
    assert (event.decision, event.status_code) == ("error", 200)
    assert event.reason == "An upstream event exceeds GATEWAY_MAX_EVENT_BYTES (262144 bytes)"


def test_the_session_event_stream_outlives_the_call_deadline(limited_gateway, tenant, hostile):
    token = _targets(tenant, hostile, "drip")

    status, received, seconds = _stream(
        limited_gateway.proxy_url("drip"), token, None, method="GET", give_up=SMALL_DEADLINE + 1.5
    )

    assert status == 200 and seconds > SMALL_DEADLINE + 1.5
    assert received >= 3


# --- header rules, no server ----------------------------------------------------------------------

BASE = "http://10.0.0.5:8080/api/"
REQUEST = "http://10.0.0.5:8080/api/items"


@pytest.mark.parametrize(
    ("location", "proxied"),
    [
        ("/api/items/2", "/mcp/web/items/2"),
        ("items/2?x=1#top", "/mcp/web/items/2?x=1#top"),
        ("http://10.0.0.5:8080/api", "/mcp/web/"),
        ("HTTP://10.0.0.5:8080/api/a", "/mcp/web/a"),
        ("http://evil.example/api/items", None),
        ("//evil.example/api/items", None),
        ("https://10.0.0.5:8080/api/items", None),
        ("http://10.0.0.5:8081/api/items", None),
        ("http://user@10.0.0.5:8080/api/items", None),
        ("/apix/items", None),
        ("/admin", None),
        ("../admin", None),
        ("/api/../admin", None),
        ("/api/%2e%2e/admin", None),
        ("/api/a%2Fb", None),
        ("/api/a\\b", None),
    ],
)
def test_an_upstream_location_is_a_proxy_path_or_is_dropped(location, proxied):
    from gateway.proxy.upstream import proxy_location

    assert proxy_location(location, target_slug="web", base_url=BASE, request_url=REQUEST) == proxied


def test_upstream_header_values_the_agent_could_not_be_sent_are_dropped():
    from gateway.proxy.upstream import agent_response_headers

    upstream = {"etag": '"a\udcff"', "cache-control": "no-cache\r\nx: y", "content-type": "text/plain"}
    headers = agent_response_headers(upstream, target_slug="web", base_url=BASE, request_url=REQUEST)
    assert headers == {"content-type": "text/plain"}


def test_a_reply_a_value_meter_must_read_is_bounded_too(limited_gateway, tenant, hostile):
    from metering.services import meter_create

    token = _targets(tenant, hostile, "huge-json-chunked")
    target = Target.objects.get(slug="huge-json-chunked")
    meter_create(
        tenant=tenant, target=target, kind="response_value", window="day", limit=10**9, value_paths=["$.x"]
    )

    reply = _post(limited_gateway.proxy_url("huge-json-chunked"), token, TOOLS_CALL)

    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == -32012


def test_a_location_under_a_base_url_typed_with_non_ascii_characters_is_rewritten():
    from gateway.proxy.upstream import proxy_location

    base = "http://10.0.0.5:8080/dökumente/"
    location = "http://10.0.0.5:8080/d%C3%B6kumente/a"
    assert proxy_location(location, target_slug="web", base_url=base, request_url=location) == "/mcp/web/a"
