"""Which credential an OAuth application's tokens act as."""

from __future__ import annotations

from django.db import models
from oauth2_provider.settings import oauth2_settings

from gateway.models import Credential


class OAuthClient(models.Model):
    """One OAuth application (django-oauth-toolkit's ``Application``) bound to the credential its tokens
    act as: they get that credential's targets, rules, filters, redaction and meters, narrowed by their
    scopes. Revoking or deactivating the credential refuses every token of its applications at once.

    An application an admin creates (``create_oauth_client``) is bound at creation; one registered by
    dynamic registration or a client ID metadata document is bound when an admin first consents to it
    (the consent creates a credential for it, see ``gateway/oauth/services.py``).
    """

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="gateway_client"
    )
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="oauth_clients")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth client"

    def __str__(self) -> str:
        return f"OAuth client {self.application_id} of credential {self.credential_id}"
