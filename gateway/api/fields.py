"""Fields that reference other objects of the caller's tenant."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers

from gateway.roles import access_for


class ReferenceNotFound(exceptions.NotFound):
    """A referenced object that does not exist or belongs to a tenant the caller cannot see: the same
    404 for both, so the answer tells nothing about other tenants; ``fields`` names the field."""

    def __init__(self, field: str, value: Any) -> None:
        super().__init__(f"{field}: no object with id {value!r} that you can reach.")
        self.fields = {field: [f"No object with id {value!r} that you can reach."]}


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A primary key of a row the caller's tenant owns (``tenant_path`` from that row to its tenant)."""

    def __init__(self, *, tenant_path: str = "tenant", **kwargs: Any) -> None:
        self.tenant_path = tenant_path
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        request = self.context.get("request")
        return access_for(getattr(request, "user", None)).filter(super().get_queryset(), self.tenant_path)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            pk = int(data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not -(2**63) < pk < 2**63:
            raise ReferenceNotFound(self.field_name or "id", data)
        row = self.get_queryset().filter(pk=pk).first()
        if row is None:
            raise ReferenceNotFound(self.field_name or self.parent.field_name or "id", data)
        return row
