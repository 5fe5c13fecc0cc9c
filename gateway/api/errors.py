"""The API's one error body: ``{"error": {"code", "message", "fields": {name: [messages]}}}``.

DRF's own exceptions, a service's Django ValidationError (the field it names), a credential that
audit events protect from deletion and a write that lost a race to a unique constraint all come out
in that shape with the right status; nothing else is caught (a bug stays a 500, logged).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

#: Service (model) field names that the API spells differently.
FIELD_ALIASES = {"__all__": "non_field_errors", "jwt_hs256_secret_encrypted": "jwt_hs256_secret"}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn ``exc`` into the API's error body (None: not an error the API answers itself)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_fields(exc))
    elif isinstance(exc, ProtectedError):
        return _body(status.HTTP_409_CONFLICT, "protected", _protected_message(exc), {})
    elif isinstance(exc, IntegrityError):
        message = "The change conflicts with another object (a name or slug already taken?): try again."
        return _body(status.HTTP_409_CONFLICT, "conflict", message, {})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        first = next(iter(fields.items()), ("", ["Invalid input."]))
        message = f"{first[0]}: {first[1][0]}" if first[0] not in ("", "non_field_errors") else first[1][0]
        response.data = {"error": {"code": "invalid", "message": message, "fields": fields}}
        return response
    fields = getattr(exc, "fields", {})
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    response.data = {"error": {"code": code, "message": str(exc.detail), "fields": fields}}
    return response


def _protected_message(error: ProtectedError) -> str:
    names = sorted(str(row) for row in list(error.protected_objects)[:20])
    return (
        f"Cannot delete: the audit trail refers to {', '.join(names)}. "
        "Deactivate such credentials instead of deleting them."
    )


def _body(status_code: int, code: str, message: str, fields: dict[str, list[str]]) -> Response:
    set_rollback()
    return Response({"error": {"code": code, "message": message, "fields": fields}}, status=status_code)


def _django_fields(error: DjangoValidationError) -> dict[str, list[str]]:
    if not hasattr(error, "error_dict"):
        return {"non_field_errors": list(error.messages)}
    return {FIELD_ALIASES.get(name, name): list(messages) for name, messages in error.message_dict.items()}


def _fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail flattened to ``{"field" or "field.sub": [messages]}``."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for name, value in detail.items():
            key = FIELD_ALIASES.get(str(name), str(name))
            fields.update(_fields(value, f"{prefix}.{key}" if prefix else key))
        return fields
    if isinstance(detail, list) and detail and all(isinstance(item, dict | list) for item in detail):
        fields = {}
        for index, item in enumerate(detail):
            fields.update(_fields(item, f"{prefix}.{index}" if prefix else str(index)))
        return fields
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's 404 handler: under ``/api/`` the API's error body (a client parses JSON, even for a
    URL that matches no route); the ordinary page elsewhere."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
