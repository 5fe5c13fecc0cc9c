"""The operator's management commands: tenants, targets, credentials and key rotation."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from gateway.conf import gateway_settings
from gateway.crypto import SecretDecryptionError, decrypt_secret, reset_crypto_cache
from gateway.models import Credential, Target, Tenant
from gateway.services import credential_create, credential_revoke, target_create, tenant_create
from gateway.tokens import token_matches, token_prefix
from policies.models import AllowRule
from policies.selectors import compile_credential, compile_target
from policies.services import access_check
from tests.commands import run_command as run

UPSTREAM = "http://127.0.0.1:9/mcp"


def run_json(line: str, *args: str) -> Any:
    return json.loads(run(line, *args, "--json"))


@contextmanager
def encryption_keys(*keys: str) -> Iterator[None]:
    """Run the block with ``GATEWAY_ENCRYPTION_KEYS`` set to ``keys``, caches cleared both ways."""
    with override_settings(GATEWAY_ENCRYPTION_KEYS=list(keys)):
        gateway_settings.cache_clear()
        reset_crypto_cache()
        try:
            yield
        finally:
            gateway_settings.cache_clear()
            reset_crypto_cache()


@pytest.fixture
def acme(db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(tenant=acme, slug="docs", upstream_url=UPSTREAM)


@pytest.fixture
def public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_PUBLIC_URL", raising=False)


# create_tenant


def test_create_tenant_prints_the_new_tenant(db):
    data = run_json("create_tenant acme")

    assert data == {
        "id": Tenant.objects.get(name="acme").id,
        "name": "acme",
        "oauth_allow_dcr": False,
        "oauth_allow_cimd": False,
        "oauth_scopes": [],
    }


def test_create_tenant_twice_fails_with_a_clear_message(acme):
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant acme")


# create_target


def test_create_target_encrypts_the_bearer_secret_and_never_prints_it(acme):
    output = run(
        f"create_target --tenant acme --slug docs --upstream {UPSTREAM}", "--upstream-bearer=upstream-s3cret"
    )

    target = Target.objects.get(slug="docs")
    assert "upstream-s3cret" not in output
    assert "secret set" in output
    assert "upstream-s3cret" not in target.auth_secret_encrypted
    assert compile_target(target).upstream_headers == (("authorization", "Bearer upstream-s3cret"),)


def test_create_target_reads_the_bearer_secret_from_a_file_or_stdin_never_the_command_line(
    acme, tmp_path, monkeypatch
):
    secret_file = tmp_path / "bearer"
    secret_file.write_text("from-a-file\n")
    run(f"create_target --tenant acme --slug docs --upstream {UPSTREAM} --upstream-bearer-file {secret_file}")
    monkeypatch.setattr("sys.stdin", StringIO("X-Api-Key: from-stdin\n"))
    run(f"create_target --tenant acme --slug other --upstream {UPSTREAM} --upstream-header-file -")

    docs, other = Target.objects.get(slug="docs"), Target.objects.get(slug="other")
    assert compile_target(docs).upstream_headers == (("authorization", "Bearer from-a-file"),)
    assert compile_target(other).upstream_headers == (("x-api-key", "from-stdin"),)


def test_create_target_with_a_custom_header_injects_that_header(acme, public_url):
    output = run(
        f"create_target --tenant acme --slug docs --upstream {UPSTREAM} --json",
        "--upstream-header=X-Api-Key: k3y-value",
    )

    assert "k3y-value" not in output
    data = json.loads(output)
    assert (data["auth_header_name"], data["upstream_secret"]) == ("X-Api-Key", "set")
    assert data["proxy_url"] == "http://127.0.0.1:8000/mcp/docs/"
    target = Target.objects.get(slug="docs")
    assert decrypt_secret(target.auth_secret_encrypted) == "k3y-value"
    assert compile_target(target).upstream_headers == (("x-api-key", "k3y-value"),)


def test_create_target_stores_kind_timeout_and_allowed_origins(acme):
    data = run_json(
        f"create_target --tenant acme --slug tools --upstream {UPSTREAM} --kind http --timeout 2.5 "
        "--allowed-origin https://app.example.com --allowed-origin https://admin.example.com"
    )

    target = Target.objects.get(slug="tools")
    assert (target.kind, target.timeout_seconds) == ("http", 2.5)
    assert target.allowed_origin_list() == ["https://app.example.com", "https://admin.example.com"]
    assert data["upstream_secret"] == "not set"


def test_create_target_with_a_malformed_header_fails_without_echoing_the_secret(acme):
    with pytest.raises(CommandError, match="'Name: value'") as error:
        run(
            f"create_target --tenant acme --slug docs --upstream {UPSTREAM} --upstream-header no-colon-s3cret"
        )

    assert "no-colon-s3cret" not in str(error.value)
    assert not Target.objects.exists()


def test_create_target_for_an_unknown_tenant_fails(db):
    with pytest.raises(CommandError, match="No tenant named 'nope'"):
        run(f"create_target --tenant nope --slug docs --upstream {UPSTREAM}")


def test_create_target_with_an_invalid_url_names_the_field(acme):
    with pytest.raises(CommandError, match="upstream_url: Enter a valid URL"):
        run("create_target --tenant acme --slug docs --upstream 'not a url'")


# create_credential


def test_created_token_authenticates_and_is_never_stored_in_clear(docs, public_url):
    data = run_json("create_credential --tenant acme --target docs --name agent --allow 'POST /tools/search'")

    credential = Credential.objects.get(pk=data["id"])
    assert token_prefix(data["token"]) == credential.prefix
    assert token_matches(data["token"], credential.secret_hash)
    stored = str(list(Credential.objects.values())) + str(list(AllowRule.objects.values()))
    assert data["token"] not in stored
    assert data["proxy_url"] == "http://127.0.0.1:8000/mcp/docs/"
    assert "proxy_urls" not in data


def test_proxy_urls_use_gateway_public_url_and_list_every_target(acme, docs, monkeypatch):
    target_create(tenant=acme, slug="wiki", upstream_url=UPSTREAM)
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://gw.example.com/")

    data = run_json("create_credential --tenant acme --target docs --target wiki --name agent --allow-all")

    assert data["proxy_url"] == "https://gw.example.com/mcp/docs/"
    assert data["proxy_urls"] == ["https://gw.example.com/mcp/docs/", "https://gw.example.com/mcp/wiki/"]
    assert set(Credential.objects.get(pk=data["id"]).targets.values_list("slug", flat=True)) == {
        "docs",
        "wiki",
    }


def test_allow_rules_scope_the_credential_in_the_order_given(docs):
    data = run_json(
        "create_credential --tenant acme --target docs --name agent "
        "--allow 'post /tools/search' --allow 'GET /resources/*'"
    )

    compiled = compile_credential(Credential.objects.get(pk=data["id"]))
    assert [(rule.method, rule.path) for rule in compiled.rules] == [
        ("POST", "/tools/search"),
        ("GET", "/resources/*"),
    ]
    assert access_check(credential=compiled, method="POST", path="/tools/search").allowed
    assert not access_check(credential=compiled, method="POST", path="/tools/delete").allowed


def test_allow_all_lets_every_route_through(docs):
    data = run_json("create_credential --tenant acme --target docs --name agent --allow-all")

    compiled = compile_credential(Credential.objects.get(pk=data["id"]))
    assert [(rule.method, rule.path) for rule in compiled.rules] == [("*", "/**")]
    assert access_check(credential=compiled, method="DELETE", path="/anything/at/all").allowed


@pytest.mark.parametrize("bad", ["/tools/search", "POST tools/search", "POST", "PO ST /x"])
def test_malformed_allow_is_refused_with_an_example_and_creates_nothing(docs, bad):
    with pytest.raises(CommandError, match=r"--allow must be 'METHOD /path', e\.g\. 'POST /tools/search'"):
        run("create_credential --tenant acme --target docs --name agent --allow", bad)

    assert not Credential.objects.exists()


def test_credential_cannot_be_bound_to_another_tenants_target(docs):
    tenant_create(name="globex")

    with pytest.raises(CommandError, match="Target 'docs' belongs to another tenant"):
        run("create_credential --tenant globex --target docs --name agent --allow-all")

    assert not Credential.objects.exists()


def test_unknown_target_is_a_clear_error(acme):
    with pytest.raises(CommandError, match="No target with slug 'ghost'"):
        run("create_credential --tenant acme --target ghost --name agent --allow-all")


def test_duplicate_credential_name_in_a_tenant_is_a_clear_error(docs):
    run("create_credential --tenant acme --target docs --name agent --allow-all")

    with pytest.raises(CommandError, match="already exists"):
        run("create_credential --tenant acme --target docs --name agent --allow-all")


def test_expires_in_sets_the_expiry(docs):
    before = timezone.now()

    data = run_json(
        "create_credential --tenant acme --target docs --name agent --allow-all --expires-in 3600"
    )

    expires_at = Credential.objects.get(pk=data["id"]).expires_at
    assert before + timedelta(seconds=3600) <= expires_at <= timezone.now() + timedelta(seconds=3600)


def test_non_positive_expires_in_is_refused(docs):
    with pytest.raises(CommandError, match="--expires-in must be a positive number"):
        run("create_credential --tenant acme --target docs --name a --expires-in 0")


def test_credential_without_rules_warns_that_everything_is_denied(docs):
    err = StringIO()
    call_command(
        *shlex.split("create_credential --tenant acme --target docs --name agent"),
        stdout=StringIO(),
        stderr=err,
    )

    assert "every call will be denied" in err.getvalue()


def test_text_output_shows_the_token_once_with_a_warning(docs, public_url):
    output = run("create_credential --tenant acme --target docs --name agent --allow-all")

    credential = Credential.objects.get(name="agent")
    token_line = next(line for line in output.splitlines() if line.startswith("Token"))
    token = token_line.rsplit(" ", 1)[1]
    assert "shown once" in token_line
    assert token_matches(token, credential.secret_hash)
    assert output.count(token) == 1
    assert "Proxy URL: http://127.0.0.1:8000/mcp/docs/" in output


# revoke_credential / rotate_credential


def test_revoke_credential_sets_revoked_at(docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs], allow=[("POST", "/x")])

    data = run_json(f"revoke_credential {issued.credential.id}")

    issued.credential.refresh_from_db()
    assert issued.credential.revoked_at is not None
    assert (data["status"], data["already_revoked"]) == ("revoked", False)


def test_revoking_twice_keeps_the_first_revocation_time(docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs])
    run(f"revoke_credential {issued.credential.id}")
    first = Credential.objects.get(pk=issued.credential.id).revoked_at

    output = run(f"revoke_credential {issued.credential.id}")

    assert "already revoked" in output
    assert Credential.objects.get(pk=issued.credential.id).revoked_at == first


@pytest.mark.parametrize("command", ["revoke_credential", "rotate_credential"])
@pytest.mark.parametrize("identifier", ["999999", "abc"])
def test_unknown_credential_id_is_a_clear_error(db, command, identifier):
    with pytest.raises(CommandError, match=f"No credential with id '{identifier}'"):
        run(command, identifier)


def test_rotated_token_authenticates_and_the_old_one_no_longer_does(docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs], allow=[("POST", "/x")])

    data = run_json(f"rotate_credential {issued.credential.id}")

    credential = Credential.objects.get(pk=issued.credential.id)
    assert token_matches(data["token"], credential.secret_hash)
    assert not token_matches(issued.token, credential.secret_hash)
    assert credential.rules.count() == 1
    assert data["token"] not in str(list(Credential.objects.values()))


def test_rotating_a_revoked_credential_is_refused(docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs])
    credential_revoke(credential=issued.credential)

    with pytest.raises(CommandError, match="is revoked"):
        run(f"rotate_credential {issued.credential.id}")

    assert Credential.objects.get(pk=issued.credential.id).secret_hash == issued.credential.secret_hash


# rotate_encryption_keys


def test_rotate_encryption_keys_makes_the_old_key_alone_unable_to_decrypt(acme):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with encryption_keys(old):
        target = target_create(
            tenant=acme, slug="docs", upstream_url=UPSTREAM, auth_type="bearer", auth_secret="upstream-s3cret"
        )
        target_create(tenant=acme, slug="open", upstream_url=UPSTREAM)

    with encryption_keys(new, old):
        data = run_json("rotate_encryption_keys")

    assert data == {"rotated": 1}
    target.refresh_from_db()
    with encryption_keys(old), pytest.raises(SecretDecryptionError):
        decrypt_secret(target.auth_secret_encrypted)
    with encryption_keys(new):
        assert decrypt_secret(target.auth_secret_encrypted) == "upstream-s3cret"


def test_rotation_without_the_old_key_fails_clearly_and_changes_nothing(acme):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with encryption_keys(old):
        target = target_create(
            tenant=acme, slug="docs", upstream_url=UPSTREAM, auth_type="bearer", auth_secret="upstream-s3cret"
        )

    with encryption_keys(new), pytest.raises(CommandError, match="nothing was changed"):
        run("rotate_encryption_keys")

    assert Target.objects.get(pk=target.pk).auth_secret_encrypted == target.auth_secret_encrypted


# From the shell


def test_an_error_exits_non_zero_with_a_message_and_no_traceback():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    line = "create_credential --tenant acme --target docs --name agent --allow tools/search"
    command = [sys.executable, "manage.py", *shlex.split(line)]

    result = subprocess.run(
        command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "--allow must be 'METHOD /path'" in result.stderr
    assert "Traceback" not in result.stderr
