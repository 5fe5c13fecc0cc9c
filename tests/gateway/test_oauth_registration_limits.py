"""Open client registration cannot be used to fill the gateway: registrations per address and hour
are limited (429 with Retry-After), and registered clients nobody consented to are deleted in time."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_application_model

from gateway.conf import gateway_settings
from gateway.models import Tenant
from gateway.oauth.services import oauth_client_create, oauth_unconsented_clients_prune
from gateway.services import credential_create, tenant_create

REDIRECT_URI = "http://127.0.0.1:33418/callback"


@pytest.fixture
def open_registration(db: None, settings) -> None:
    tenant = tenant_create(name="acme", oauth_allow_dcr=True, oauth_scopes=["tools:search"])
    assert tenant.oauth_allow_dcr
    settings.GATEWAY = {**settings.GATEWAY, "OAUTH_REGISTRATIONS_PER_HOUR": "3"}
    gateway_settings.cache_clear()
    caches["throttle"].clear()
    yield
    gateway_settings.cache_clear()


def register(client: Client, address: str) -> object:
    return client.post(
        "/oauth/register/",
        data={"client_name": "agent", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def a_new_address() -> str:
    return f"198.51.100.{secrets.randbelow(250) + 1}"


def test_registrations_past_the_hourly_limit_of_an_address_are_refused_with_429(open_registration):
    client, address = Client(), a_new_address()
    statuses = [register(client, address).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = register(client, address)
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert refused.json()["error"] == "temporarily_unavailable"
    # another address is not held back by it
    assert register(client, "203.0.113.7").status_code == 201
    assert get_application_model().objects.count() == 4


def test_registered_clients_nobody_consented_to_are_deleted_after_a_day(open_registration):
    Application = get_application_model()
    client = Client()
    fresh, stale = (register(client, a_new_address()).json()["client_id"] for _ in range(2))
    Application.objects.filter(client_id=stale).update(created=timezone.now() - timedelta(hours=25))
    issued = credential_create(tenant=Tenant.objects.get(name="acme"), name="agent")
    made_by_admin = oauth_client_create(credential=issued.credential, grant="client_credentials")
    Application.objects.filter(pk=made_by_admin.application.pk).update(
        created=timezone.now() - timedelta(days=9)
    )
    # when
    deleted = oauth_unconsented_clients_prune()
    # then: only the stale registration is gone
    assert deleted == 1
    remaining = set(Application.objects.values_list("client_id", flat=True))
    assert fresh in remaining and stale not in remaining
    assert made_by_admin.application.client_id in remaining
