"""Public views of the audit app."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from audit.signing import ALGORITHM, public_keys


@require_safe
def audit_keys(request: HttpRequest) -> JsonResponse:
    """``/.well-known/audit-keys``: the public keys that verify audit seals (public, no login).

    ``{"algorithm": "Ed25519", "keys": [{"key_id", "public_key" (raw, base64url), "signing"}]}``;
    ``signing`` marks the key that signs new seals.
    """
    response = JsonResponse({"algorithm": ALGORITHM, "keys": public_keys()})
    response["Cache-Control"] = "public, max-age=300"
    return response
