"""JWT credentials as an admin makes them: the CLI, the one validation, secrets kept encrypted and never
shown, check_access, and the JWKS keys the gateway keeps or ignores."""

from __future__ import annotations

import io
import json
import shlex
from io import StringIO
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.crypto import decrypt_secret
from gateway.models import Credential, Target, Tenant
from gateway.proxy.jwks import JwksError, signing_keys
from gateway.services import (
    JwtSettings,
    credential_create,
    credential_rotate,
    credential_set_jwt,
    jwt_credential_create,
    target_create,
    tenant_create,
)
from policies.selectors import compile_credential
from tests.gateway.proxy.test_jwt_authentication import EC_KEY, RSA_KEY, pem

SECRET = "s3cret-" * 8  # 56 bytes


@pytest.fixture
def acme(db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(tenant=acme, slug="docs", upstream_url="http://127.0.0.1:9/mcp")


def run_json(line: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = StringIO()
    call_command(*shlex.split(line), "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


JWT_ARGS = (
    "create_credential --kind jwt --tenant acme --target docs --name agent --allow 'POST /tools/search' "
    "--issuer https://idp.example.com/ --audience gw --subject agent-7"
)


def test_cli_creates_a_jwks_credential_and_shows_no_token(docs):
    data = run_json(f"{JWT_ARGS} --jwks-url https://idp.example.com/.well-known/jwks.json")

    credential = Credential.objects.get(pk=data["id"])
    assert credential.is_jwt and "token" not in data
    assert data["key_source"] == "https://idp.example.com/.well-known/jwks.json"
    assert (data["issuer"], data["audience"], data["subject_claim"], data["subject"]) == (
        "https://idp.example.com/",
        "gw",
        "sub",
        "agent-7",
    )
    assert credential.rules.get().path == "/tools/search"


def test_cli_reads_the_hs256_secret_from_stdin_and_stores_it_encrypted_only(docs, monkeypatch):
    data = run_json(f"{JWT_ARGS} --hs256-secret-file -", stdin=SECRET + "\n", monkeypatch=monkeypatch)

    credential = Credential.objects.get(pk=data["id"])
    assert data["key_source"] == "hs256-secret"
    assert SECRET not in json.dumps(data) + str(list(Credential.objects.values()))
    assert decrypt_secret(credential.jwt_hs256_secret_encrypted) == SECRET  # the newline dropped
    assert SECRET not in repr(compile_credential(credential))


def test_cli_reads_a_public_key_file(docs, tmp_path):
    key_file = tmp_path / "idp.pem"
    key_file.write_text(pem(EC_KEY))

    data = run_json(f"{JWT_ARGS} --public-key {key_file}")

    assert compile_credential(Credential.objects.get(pk=data["id"])).jwt.algorithm == "ES256"


def test_cli_refuses_a_jwt_credential_without_a_key_source_or_issuer(docs):
    with pytest.raises(CommandError, match="exactly one key source"):
        run_json(JWT_ARGS)
    with pytest.raises(CommandError, match="--issuer is required"):
        run_json(
            JWT_ARGS.replace("--issuer https://idp.example.com/", "") + " --jwks-url https://i.example/k"
        )


def _settings(**overrides: Any) -> JwtSettings:
    fields = {"issuer": "https://idp.example.com/", "audience": "gw", "subject": "agent-7", **overrides}
    return JwtSettings(**fields)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one key source"),
        ({"hs256_secret": SECRET, "jwks_url": "https://idp.example.com/jwks"}, "exactly one key source"),
        ({"hs256_secret": "short"}, "at least 32 bytes"),
        ({"public_key": "not a key"}, "not a PEM public key"),
        (
            {"public_key": pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))},
            "at least 2048 bits",
        ),
        ({"public_key": pem(ec.generate_private_key(ec.SECP384R1()))}, "P-256"),
        ({"jwks_url": "http://idp.example.com/jwks"}, "must use https"),
        ({"jwks_url": "https://user:pw@idp.example.com/jwks"}, "user name or password"),
        ({"jwks_url": "https://idp.example.com/jwks", "leeway_seconds": 3600}, "less than or equal to 300"),
        ({"jwks_url": "https://idp.example.com/jwks", "subject": ""}, "Required for a JWT credential"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_jwt_credential_that_could_not_verify_safely_is_refused(acme, settings, message):
    with pytest.raises(ValidationError, match=message):
        jwt_credential_create(tenant=acme, name="agent", jwt=_settings(**settings))


def test_two_live_credentials_cannot_claim_the_same_issuer_and_subject(acme):
    jwt_credential_create(tenant=acme, name="one", jwt=_settings(public_key=pem(RSA_KEY)))

    with pytest.raises(ValidationError, match="issuer and subject already exists"):
        jwt_credential_create(tenant=acme, name="two", jwt=_settings(public_key=pem(RSA_KEY)))


def test_a_jwt_credential_has_no_token_to_rotate_and_its_secret_is_kept_when_left_blank(acme):
    credential = jwt_credential_create(tenant=acme, name="agent", jwt=_settings(hs256_secret=SECRET))
    with pytest.raises(ValidationError, match="no gateway token"):
        credential_rotate(credential=credential)

    credential_set_jwt(credential=credential, jwt=_settings(audience="other"))  # secret left blank
    assert decrypt_secret(credential.jwt_hs256_secret_encrypted) == SECRET
    credential_set_jwt(credential=credential, jwt=_settings(public_key=pem(RSA_KEY)))
    assert credential.jwt_hs256_secret_encrypted == ""


def test_an_api_key_credential_cannot_carry_jwt_settings(acme):
    credential = credential_create(tenant=acme, name="agent").credential
    credential.jwt_jwks_url = "https://idp.example.com/jwks"
    with pytest.raises(ValidationError, match="Only a JWT credential"):
        credential.full_clean()


def test_check_access_judges_a_jwt_credential_like_an_api_key(docs):
    data = run_json(f"{JWT_ARGS} --jwks-url https://idp.example.com/jwks")
    out = StringIO()
    call_command("check_access", "--credential", str(data["id"]), "POST /tools/search", "--json", stdout=out)

    result = json.loads(out.getvalue())
    assert result["credential"]["kind"] == "jwt"
    assert result["decisions"][0]["decision"] == "allowed"


def _jwk(key: Any, **extra: Any) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPublicKey) else ECAlgorithm
    return {**algorithm.to_jwk(key, as_dict=True), **extra}


def test_jwks_keys_of_unsupported_types_are_ignored():
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            _jwk(RSA_KEY.public_key(), kid="enc", use="enc"),
            _jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), kid="p384"),
            _jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), kid="weak"),
            _jwk(RSA_KEY.public_key(), kid="lying", alg="HS256"),
            "not a key",
            _jwk(RSA_KEY.public_key(), kid="rsa"),
            _jwk(EC_KEY.public_key(), kid="ec"),
        ]
    }

    keys = signing_keys(document)

    assert {kid: alg for kid, (_, alg) in keys.items()} == {"rsa": "RS256", "ec": "ES256"}
    with pytest.raises(JwksError):
        signing_keys({"no": "keys"})


def test_rotate_credential_says_a_jwt_credential_has_no_token_to_rotate(docs):
    data = run_json(f"{JWT_ARGS} --jwks-url https://idp.example.com/jwks")

    with pytest.raises(CommandError, match="no gateway token to rotate"):
        call_command("rotate_credential", str(data["id"]), stdout=StringIO())
