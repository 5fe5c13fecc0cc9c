from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "gateway.oauth"
    label = "gateway_oauth"
    verbose_name = "OAuth"

    def ready(self) -> None:
        from oauth2_provider.models import get_access_token_model, get_application_model

        from gateway.oauth.models import OAuthClient
        from policies.invalidation import invalidate_on_change

        # A token the proxy cached must stop working once it is revoked (deleted) or changed; a new
        # token needs no invalidation (nothing cached it yet), so issuing one empties no cache.
        invalidate_on_change(get_access_token_model(), on_create=False)
        invalidate_on_change(get_application_model())
        invalidate_on_change(OAuthClient)
