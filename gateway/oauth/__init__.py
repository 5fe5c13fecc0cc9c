"""The gateway as an OAuth 2.1 authorization server for its own proxy URLs (django-oauth-toolkit).

Each OAuth application acts as exactly one credential (:class:`gateway.oauth.models.OAuthClient`);
its tokens are bound to one target (RFC 8707) and narrowed by their scopes
(:mod:`gateway.oauth.scopes`). The proxy checks a token from the compiled-policy cache
(:mod:`gateway.oauth.selectors`), with no database query on a warm call.
"""
