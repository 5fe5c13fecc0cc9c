"""What authenticating a call costs: an API key versus a JWT, in CPU per call of the ``authenticate`` step.

Run by hand from the repository root::

    .venv/bin/python bench/auth_bench.py [--calls 5000] [--rounds 7]

This process sets up a throwaway SQLite database (a tenant, a target, an API-key credential and one
JWT credential per key source: HS256 secret, RS256 PEM key, ES256 PEM key, RS256 from a JWKS served
on loopback by this process), then awaits the proxy's real ``authenticate`` step with the real
per-process caches, on a context built by hand (the other pipeline steps are not run). CPU is
``time.process_time`` around ``--calls`` calls, contexts built beforehand.

Cases:

- ``OAuth token`` (``warm`` only): an access token the gateway issued (client credentials), checked
  as on every call but the first: its tag (an HMAC), its digest looked up in the policy cache, the
  audience and expiry compared, the credential looked up; ``scope-narrowed`` adds the copy of the
  credential narrowed to the token's scope (``tools:search``).
- ``warm``: the caches are loaded, as on every call but the first: for an API key, the prefix set
  and the compiled credential; for a JWT, also the JWKS and the verified-token cache (the token was
  verified once, so the call is a SHA-256 of the token and a dictionary look-up).
- ``cold verify``: the verified-token cache is emptied before each call, so each call parses the JWT
  and checks its signature and claims (what a new token costs once, e.g. after a refresh).
- ``guard`` (API key): ``check_auth_failures`` runs before ``authenticate``, as in the pipeline, with
  GATEWAY_AUTH_FAILURES_PER_MINUTE at its default, for an address that never failed (no store read).
- ``guard, watched`` (API key): the same from an address that failed once in the last minute, so
  the guard reads its count: here from process memory (no ``REDIS_URL``); with Redis, add one
  round trip (see the README).

Target (issue 11): a JWT check on a warm cache adds under 0.1 ms CPU per call; an OAuth token is
checked with no database query on a warm call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from proxy_bench import ALLOW_RULES, code_revision, free_port, gateway_env, machine_description  # noqa: E402

PYTHON = sys.executable
ISSUER = "https://idp.bench.example/"
AUDIENCE = "mcp-gateway"
HS_SECRET = "bench-hs256-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def keys() -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    return {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }


def pem(private_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    public = private_key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def mint(subject: str, key: Any, algorithm: str, kid: str | None = None) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 3600}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def configure(jwks_url: str, private: dict[str, Any]) -> dict[str, str]:
    """Migrate, create the target and one credential per case; {case: token}."""
    from django.core.management import call_command

    from gateway.services import (
        JwtSettings,
        credential_create,
        jwt_credential_create,
        target_create,
        tenant_create,
    )

    call_command("migrate", verbosity=0)
    tenant = tenant_create(name="bench")
    target = target_create(tenant=tenant, slug="bench", upstream_url="http://127.0.0.1:9/mcp")
    tokens = {
        "API key": credential_create(tenant=tenant, name="key", targets=[target], allow=ALLOW_RULES).token
    }
    sources = {
        "JWT HS256 secret": ({"hs256_secret": HS_SECRET}, HS_SECRET, "HS256", None),
        "JWT RS256 PEM key": ({"public_key": pem(private["RS256"])}, private["RS256"], "RS256", None),
        "JWT ES256 PEM key": ({"public_key": pem(private["ES256"])}, private["ES256"], "ES256", None),
        "JWT RS256 JWKS": ({"jwks_url": jwks_url}, private["RS256"], "RS256", "k1"),
    }
    for n, (case, (source, key, algorithm, kid)) in enumerate(sources.items()):
        subject = f"agent-{n}"
        settings = JwtSettings(issuer=ISSUER, audience=AUDIENCE, subject=subject, **source)
        jwt_credential_create(tenant=tenant, name=case, jwt=settings, targets=[target], allow=ALLOW_RULES)
        tokens[case] = mint(subject, key, algorithm, kid)
    for case, scope in (("OAuth token", "mcp"), ("OAuth token, scope-narrowed", "tools:search")):
        tokens[case] = oauth_token(tenant, target, case, scope)
    return tokens


def oauth_token(tenant: Any, target: Any, name: str, scope: str) -> str:
    """An access token for ``target`` of a client credentials client of a new credential, issued as the
    token endpoint issues it (only its digest stored)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, set_token_value

    from gateway.oauth.services import oauth_client_create
    from gateway.oauth.tokens import generate_access_token
    from gateway.services import credential_create

    credential = credential_create(tenant=tenant, name=name, targets=[target], allow=ALLOW_RULES).credential
    client = oauth_client_create(credential=credential, grant="client_credentials")
    raw = generate_access_token()
    host = next((h for h in settings.ALLOWED_HOSTS if h not in ("*", "")), "127.0.0.1").lstrip(".")
    token = AccessToken(
        application=client.application,
        expires=timezone.now() + timedelta(hours=1),
        scope=scope,
        resource=[f"http://{host}/mcp/{target.slug}/"],
    )
    set_token_value(token, raw)
    token.save()
    return raw


async def serve_jwks(port: int, rsa_key: Any) -> asyncio.AbstractServer:
    from jwt.algorithms import RSAAlgorithm

    jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    body = orjson.dumps({"keys": [jwk]})
    reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # the client left, or the benchmark is over

    return await asyncio.start_server(handle, "127.0.0.1", port)


def contexts(runtime: Any, target: Any, token: str, count: int, client_ip: str) -> list[Any]:
    from gateway.proxy.context import ProxyContext

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    started = datetime.now(UTC)
    return [
        ProxyContext(
            runtime=runtime,
            receive=receive,
            method="POST",
            path="/mcp/bench/",
            query_string="",
            request_id="bench",
            started_at=started,
            headers={"authorization": f"Bearer {token}"},
            target=target,
            client_ip=client_ip,
        )
        for _ in range(count)
    ]


WATCHED_ADDRESS = "192.0.2.1"


async def cpu_us_per_call(runtime: Any, target: Any, token: str, calls: int, mode: str) -> float:
    from gateway.proxy.steps import authenticate, check_auth_failures

    address = WATCHED_ADDRESS if mode == "guard, watched" else "192.0.2.2"
    batch = contexts(runtime, target, token, calls, address)
    verified = runtime.cache.verified_jwts
    cold, guarded = mode == "cold verify", mode.startswith("guard")
    started = time.process_time()
    for ctx in batch:
        if cold:
            verified.clear()
        if guarded:
            await check_auth_failures(ctx)
        await authenticate(ctx)
    elapsed = time.process_time() - started
    if batch[-1].credential is None:
        raise SystemExit("authentication failed")
    return elapsed * 1e6 / calls


async def measure(args: argparse.Namespace, tokens: dict[str, str], server: asyncio.AbstractServer) -> None:
    from gateway.proxy.runtime import ProxyRuntime
    from policies.cache import policy_cache

    runtime = ProxyRuntime(policy_cache)
    try:
        target = await policy_cache.target("bench")
        await runtime.auth_failures.record_failure(WATCHED_ADDRESS)
        cases = [(case, "warm") for case in tokens]
        cases += [(case, "cold verify") for case in tokens if case.startswith("JWT")]
        cases += [("API key", "guard"), ("API key", "guard, watched")]
        for case, mode in cases:  # warm-up: caches, JWKS, the interpreter's own
            await cpu_us_per_call(runtime, target, tokens[case], 200, mode)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
        for round_index in range(args.rounds):
            order = cases[round_index % len(cases) :] + cases[: round_index % len(cases)]
            for case, mode in order:
                calls = args.calls if mode != "cold verify" else max(200, args.calls // 10)
                samples[(case, mode)].append(
                    await cpu_us_per_call(runtime, target, tokens[case], calls, mode)
                )
        report(samples, args)
    finally:
        await runtime.client.close()
        await runtime.jwks.aclose()
        server.close()


def report(samples: dict[tuple[str, str], list[float]], args: argparse.Namespace) -> None:
    base = statistics.median(samples[("API key", "warm")])
    print(f"\n{args.rounds} rounds; median CPU per call of the authenticate step (and the guard's)\n")
    print("| credential | cache | CPU µs/call (median) | min-max | vs API key |")
    print("|---|---|---:|---:|---:|")
    for (case, mode), values in samples.items():
        median = statistics.median(values)
        added = "-" if (case, mode) == ("API key", "warm") else f"{median - base:+.1f} µs"
        print(f"| {case} | {mode} | {median:.1f} | {min(values):.1f}-{max(values):.1f} | {added} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls", type=int, default=5000, help="warm calls per case per round (default 5000)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds, cases interleaved (default 7)")
    args = parser.parse_args()
    print(f"Machine: {machine_description()}; gateway code at {code_revision()}")
    print(f"Command: {' '.join([Path(PYTHON).name, *sys.argv])}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"Load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="auth-bench-") as tmp_name:
        os.environ.clear()
        os.environ.update(gateway_env(Path(tmp_name)))
        import django
        from django.conf import settings

        django.setup(set_prefix=False)
        settings.JWKS_ALLOW_LOOPBACK_HTTP = True  # the JWKS is served by this process, on loopback
        private = keys()
        port = free_port()
        tokens = configure(f"http://127.0.0.1:{port}/jwks.json", private)

        async def run() -> None:
            server = await serve_jwks(port, private["RS256"])
            await measure(args, tokens, server)

        asyncio.run(run())


if __name__ == "__main__":
    main()
