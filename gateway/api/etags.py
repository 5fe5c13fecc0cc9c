"""Entity tags of API objects, from the row's stored content: a detail GET sends ``ETag``, and
``If-Match`` on PUT, PATCH and DELETE must name the current one (412 otherwise), so two integrations
never overwrite each other's change silently."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models
from rest_framework import status
from rest_framework.exceptions import APIException

from audit.changes import snapshot


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object changed since you read it (If-Match does not name its ETag): read it again."
    default_code = "precondition_failed"


def entity_tag(instance: models.Model) -> str:
    """A strong ETag over the row's columns and many-to-many ids (secrets enter only as digests)."""
    content: dict[str, Any] = {"model": instance._meta.label_lower, "pk": instance.pk}
    content.update({name: _stable(value) for name, value in snapshot(instance).items()})
    for field in instance._meta.many_to_many:
        content[field.name] = sorted(getattr(instance, field.name).values_list("pk", flat=True))
    updated = getattr(instance, "updated_at", None)
    content["updated_at"] = _stable(updated)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _stable(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return hashlib.sha256(bytes(value)).hexdigest()
    return value


def check_if_match(header: str | None, current: str) -> None:
    """Raise PreconditionFailed unless ``header`` (absent: no condition) names ``current`` or is ``*``.
    If-Match compares strongly: a weak tag (``W/"..."``) never matches."""
    if header is None:
        return
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags or current in tags:
        return
    raise PreconditionFailed()
