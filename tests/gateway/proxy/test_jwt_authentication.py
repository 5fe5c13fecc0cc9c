"""JWT credentials as an agent and its identity provider see them: a signed JWT calls allowed tools,
every forged, expired or misdirected one is the same 401 with the precise reason audited (never the
token), JWKS keys rotate without a restart, and junk JWTs cost no database query."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx2
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.forms.models import model_to_dict
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from audit.models import AuditEvent
from gateway.services import JwtSettings, credential_revoke, jwt_credential_create
from tests.conftest import mcp_client, run
from tests.gateway.proxy.test_authentication import BODY, HEADERS
from tests.queries import count_request_queries
from tests.servers import ServerThread
from tests.upstream import answer_lifespan, send_reply

ISSUER = "https://idp.example.com/"
AUDIENCE = "mcp-gateway"
SUBJECT = "agent-7"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
HS_SECRET = secrets.token_urlsafe(48)


def pem(private_key: Any) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 300, **overrides}


def signed(key: Any = RSA_KEY, algorithm: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


def unsigned(**overrides: Any) -> str:
    """An ``alg: none`` token: no signature at all."""
    header = b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    return f"{header}.{b64(orjson.dumps(claims(**overrides)))}."


def hs256_with_public_key() -> str:
    """The classic confusion: HS256 'signed' with the RSA public key the gateway knows (PyJWT refuses
    to make one, so it is made by hand)."""
    import hashlib
    import hmac

    header = b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = b64(orjson.dumps(claims()))
    signature = hmac.new(pem(RSA_KEY).encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def jwt_credential(tenant, target, name: str = "jwt-agent", **settings: Any):
    fields: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "subject": SUBJECT, **settings}
    if not {"hs256_secret", "jwks_url"} & settings.keys():
        fields.setdefault("public_key", pem(RSA_KEY))
    return jwt_credential_create(
        tenant=tenant,
        name=name,
        jwt=JwtSettings(**fields),
        targets=[target],
        allow=[("POST", "/tools/search"), ("POST", "/tools/list")],
    )


def post(url: str, token: str, client: httpx2.Client | None = None) -> httpx2.Response:
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    if client is not None:
        return client.post(url, content=BODY, headers=headers)
    return httpx2.post(url, content=BODY, headers=headers, timeout=10)


class IdentityProvider:
    """A JWKS endpoint on a loopback port, its key set replaceable, its fetches counted."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # a plain ASGI 3 callable
            await self.serve(scope, receive, send)

        self.server = ServerThread(app).start()
        self.jwks_url = f"{self.server.url}/jwks.json"

    def publish(self, *keys: tuple[str, Any]) -> None:
        self.keys = [_jwk(kid, key) for kid, key in keys]

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answer_lifespan(scope, receive, send):
            return
        self.fetches += 1
        await send_reply(send, orjson.dumps({"keys": self.keys}))


def _jwk(kid: str, private_key: Any) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


@pytest.fixture
def idp():
    provider = IdentityProvider()
    yield provider
    provider.server.stop()


def jwks_of(gateway):
    from gateway.proxy.runtime import runtime_for_loop

    return runtime_for_loop(gateway.server.loop).jwks


def test_an_agent_with_a_jwt_from_its_identity_provider_calls_an_allowed_tool(gateway, tenant, target, idp):
    idp.publish(("k1", RSA_KEY))
    jwt_credential(tenant, target, jwks_url=idp.jwks_url)
    token = signed(kid="k1")

    async def agent():
        async with mcp_client(gateway.proxy_url("docs"), token) as client:
            return await client.call_tool("search", {"query": "gateways"})

    result = run(agent())
    assert not result.is_error
    assert result.structured_content["hits"] == ["result for gateways"]


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(HS_SECRET, "HS256"), (RSA_KEY, "RS256"), (EC_KEY, "ES256")],
    ids=["HS256 secret", "RS256 key", "ES256 key"],  # never the key itself (random per run, and secret)
)
def test_each_kind_of_static_key_verifies_its_own_algorithm(gateway, tenant, target, key, algorithm):
    settings = {"hs256_secret": HS_SECRET} if algorithm == "HS256" else {"public_key": pem(key)}
    jwt_credential(tenant, target, **settings)

    assert post(gateway.proxy_url("docs"), signed(key, algorithm)).status_code == 200


def _without_exp(credential) -> str:
    return jwt.encode({k: v for k, v in claims().items() if k != "exp"}, RSA_KEY, algorithm="RS256")


def _revoked(credential) -> str:
    credential_revoke(credential=credential)
    return signed()


CASES = {
    "expired": (lambda c: signed(exp=int(time.time()) - 120), "JWT expired", False),
    "wrong issuer": (lambda c: signed(iss="https://evil.example.com/"), "Unknown JWT issuer", False),
    "wrong audience": (lambda c: signed(aud="another-service"), "JWT audience does not match", False),
    "wrong audience list": (lambda c: signed(aud=["a", "b"]), "JWT audience does not match", False),
    "wrong sub": (lambda c: signed(sub="agent-8"), "JWT subject matches no credential of its issuer", False),
    "alg none": (lambda c: unsigned(), "JWT algorithm not allowed", False),
    "HS256 with the RSA public key": (lambda c: hs256_with_public_key(), "JWT algorithm not allowed", False),
    "bad signature": (lambda c: signed(OTHER_RSA_KEY), "JWT signature does not verify", False),
    "not yet valid": (
        lambda c: signed(nbf=int(time.time()) + 600),
        "JWT not yet valid (nbf or iat in the future)",
        False,
    ),
    "issued in the future": (
        lambda c: signed(iat=int(time.time()) + 600),
        "JWT not yet valid (nbf or iat in the future)",
        False,
    ),
    "no exp": (_without_exp, "JWT lacks a required claim (exp, iss or aud)", False),
    "revoked": (_revoked, "Credential revoked", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_refused_jwt_gets_the_same_401_and_the_audit_keeps_the_reason_not_the_token(
    gateway, tenant, target, case
):
    make_token, reason, attributed = CASES[case]
    credential = jwt_credential(tenant, target)
    token = make_token(credential)

    response = post(gateway.proxy_url("docs"), token)

    assert response.status_code == 401
    assert response.json()["error"] == {"code": -32001, "message": "Invalid or missing credential"}
    gateway.flush_audit()
    [event] = AuditEvent.objects.filter(kind="call")
    assert (event.decision, event.status_code, event.reason) == ("denied", 401, reason)
    assert event.credential_id == (credential.id if attributed else None)
    recorded = repr(model_to_dict(event))
    assert all(part not in recorded for part in token.split(".") if part)


def test_a_jwt_accepted_a_moment_ago_is_refused_once_its_credential_is_revoked(gateway, tenant, target):
    credential = jwt_credential(tenant, target)
    token = signed()
    url = gateway.proxy_url("docs")
    assert post(url, token).status_code == 200  # verified and remembered

    credential_revoke(credential=credential)

    assert post(url, token).status_code == 401


def test_an_rs256_token_is_refused_by_an_hs256_credential(gateway, tenant, target):
    jwt_credential(tenant, target, hs256_secret=HS_SECRET)

    assert post(gateway.proxy_url("docs"), signed(RSA_KEY, "RS256")).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.get(kind="call").reason == "JWT algorithm not allowed"


def test_a_key_rotated_at_the_identity_provider_is_picked_up_without_a_restart(gateway, tenant, target, idp):
    idp.publish(("k1", RSA_KEY))
    jwt_credential(tenant, target, jwks_url=idp.jwks_url)
    url = gateway.proxy_url("docs")
    assert post(url, signed(RSA_KEY, kid="k1")).status_code == 200
    jwks_of(gateway).refetch_seconds = 0.2  # the default (10 s) would make this test wait
    time.sleep(0.3)

    idp.publish(("k2", EC_KEY))  # the IdP rotates to a new key, with a new kid

    assert post(url, signed(EC_KEY, "ES256", kid="k2")).status_code == 200
    assert idp.fetches == 2
    time.sleep(0.3)
    response = post(url, signed(RSA_KEY, kid="k1", sub=SUBJECT, jti="fresh"))
    assert response.status_code == 401  # the retired key is gone after the refetch it caused
    gateway.flush_audit()
    assert AuditEvent.objects.get(status_code=401).reason == "JWT key id not in the issuer's JWKS"


def test_made_up_key_ids_refetch_the_jwks_at_most_once_per_interval(gateway, tenant, target, idp):
    idp.publish(("k1", RSA_KEY))
    jwt_credential(tenant, target, jwks_url=idp.jwks_url)
    url = gateway.proxy_url("docs")
    assert post(url, signed(kid="k1")).status_code == 200
    with httpx2.Client(timeout=10) as client:
        statuses = {post(url, signed(kid=f"made-up-{n}"), client).status_code for n in range(30)}
    assert statuses == {401}
    assert idp.fetches in (1, 2)  # the first fetch, and at most one refetch within 10 s


def test_a_jwks_that_cannot_be_fetched_refuses_with_that_reason(gateway, tenant, target):
    jwt_credential(tenant, target, jwks_url="http://127.0.0.1:1/jwks.json")  # nothing listens there

    assert post(gateway.proxy_url("docs"), signed(kid="k1")).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.get(kind="call").reason == "JWKS could not be fetched"


def _random_jwt(issuer: str, subject: str) -> str:
    return signed(OTHER_RSA_KEY, iss=issuer, sub=subject, jti=secrets.token_hex(8))


def _settle(client: httpx2.Client, url: str) -> None:
    """Call until refusals cost no query: the target, the issuers and the candidate are loaded."""
    deadline, quiet = time.monotonic() + 15, 0
    while quiet < 3:
        with count_request_queries() as queries:
            assert post(url, _random_jwt(ISSUER, SUBJECT), client).status_code == 401
        quiet = 0 if queries.statements else quiet + 1
        assert time.monotonic() < deadline, "the policy cache never settled"
        time.sleep(0.05)


def test_random_jwts_cost_no_database_query_once_the_issuers_are_loaded(gateway, tenant, target):
    from policies.cache import policy_cache
    from policies.selectors import policy_version_get

    jwt_credential(tenant, target)
    url = gateway.proxy_url("docs")
    junk = [_random_jwt(f"https://{n}.example/", "x") for n in range(50)]  # unknown issuers
    junk += [_random_jwt(ISSUER, f"nobody-{n}") for n in range(50)]  # known issuer, unknown subjects
    junk += [_random_jwt(ISSUER, SUBJECT) for _ in range(50)]  # the real subject, forged signature
    junk += ["a.b.c", "e30.e30.", "x" * 20000]
    policy_cache.observe_version(policy_version_get())
    with httpx2.Client(timeout=10) as client:
        for _ in range(5):
            _settle(client, url)
            generation = policy_cache.generation
            with count_request_queries() as queries:
                statuses = {post(url, token, client).status_code for token in junk}
            # Redis pub/sub is server-wide: another test run on this Redis may invalidate meanwhile.
            if policy_cache.generation == generation:
                break
        else:
            pytest.fail("the policy cache was invalidated during every attempt")
        assert statuses == {401}
        assert queries.statements == [], queries.statements
        assert post(url, signed(), client).status_code == 200  # the real agent still gets in


def test_a_remembered_jwt_is_refused_once_it_expires(gateway, tenant, target):
    jwt_credential(tenant, target, leeway_seconds=0)
    token = signed(exp=int(time.time()) + 2)
    url = gateway.proxy_url("docs")
    assert post(url, token).status_code == 200  # verified and remembered until its exp

    time.sleep(3)

    assert post(url, token).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.get(status_code=401).reason == "JWT expired"


def test_an_api_key_made_up_from_a_jwt_credentials_prefix_is_refused(gateway, tenant, target):
    credential = jwt_credential(tenant, target)
    forged = f"mgw_{credential.prefix}_{secrets.token_urlsafe(32)}"

    assert post(gateway.proxy_url("docs"), forged).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.get(kind="call").reason == "API key presented for a JWT credential"
