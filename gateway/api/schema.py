"""The OpenAPI description of the API's conventions: every operation documents the error body it may
answer with, the ETag of detail reads and the If-Match precondition of writes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The one error body of the API."""

    error = ErrorDetailSerializer()


ERRORS = {
    "400": "Invalid input: ``fields`` names each field and what is wrong with it.",
    "401": "No, or an invalid, expired or revoked, API token.",
    "403": "The caller's role or token scope does not allow this.",
    "404": "No such object in the caller's tenant (or a referenced one).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflict: a name already taken, or a credential the audit trail protects.",
    "412": "If-Match does not name the object's current ETag.",
    "415": "Unsupported media type: send JSON.",
}


class GatewayAutoSchema(AutoSchema):
    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.method in ("PUT", "PATCH", "DELETE"):
            parameters.append(
                OpenApiParameter(
                    "If-Match",
                    str,
                    OpenApiParameter.HEADER,
                    description="The ETag of the object as read; 412 when it has changed since.",
                )
            )
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        error = OpenApiResponse(response=ErrorSerializer)
        for code, description in ERRORS.items():
            if code not in responses:
                body = self._get_response_for_code(error.response, code, direction=direction)
                body["description"] = description
                responses[code] = body
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "gateway.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A user's API token (create_api_token), as 'Bearer <token>' or 'Token <token>'.",
        }


class SessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "gateway.api.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
