"""The change log: every create, change and delete of the configuration (tenants, targets, credentials,
allow-rules, meters, filters, redaction policies, tool approvals) as an audit event of kind "change",
written in the same transaction as the change, so the sealer seals it with the rest of the trail.

Who made the change travels in a context variable, not through every call: the admin
(:class:`audit.admin.ChangeLoggedAdmin`) and the CLI (``GatewayCommand``) wrap their work in
:func:`changes_by`; the API will do the same. A write outside any of them (a shell, a script) is
recorded as actor "unknown", source "system".

The models record themselves through :class:`ChangeLogged`, a model-level hook on ``save()`` and
``delete()`` (explicit code, not signals): the admin's forms and inline formsets save models directly,
so the model is the one place every writer passes. What it does not see: ``QuerySet.update()``
(used only for bookkeeping such as a credential's last use), ``QuerySet.delete()`` (the admin deletes
one by one instead), fixtures loaded raw by ``loaddata`` and many-to-many bindings.

A diff never holds a secret: upstream and HS256 secrets (compared decrypted, so re-encrypting under a
new key is no change) and token hashes appear only as "set", "not set" or "changed".
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django.db import models, router, transaction
from django.db.models.deletion import Collector

SOURCES = ("admin", "cli", "api", "system")
SET, NOT_SET, CHANGED = "set", "not set", "changed"
# Columns a change never shows: kept up to date by the gateway itself.
_UNSHOWN = frozenset({"created_at", "updated_at", "last_used_at"})

Snapshot = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChangeActor:
    """Who is changing the configuration, and through what."""

    actor: str
    source: str


SYSTEM = ChangeActor(actor="unknown", source="system")
_current: ContextVar[ChangeActor] = ContextVar("audit_change_actor", default=SYSTEM)


@contextmanager
def changes_by(*, actor: str, source: str) -> Iterator[ChangeActor]:
    """Record the changes made inside the block as made by ``actor`` through ``source``."""
    if source not in SOURCES:
        raise ValueError(f"unknown change source {source!r}")
    who = ChangeActor(actor=actor[:200] or "unknown", source=source)
    token = _current.set(who)
    try:
        yield who
    finally:
        _current.reset(token)


def current_change_actor() -> ChangeActor:
    return _current.get()


class ChangeLogged:
    """Mixin of the configuration models: each save and delete is a change-log entry (see module doc).

    ``change_log_secrets`` are encrypted secrets (compared decrypted), ``change_log_hashes`` digests;
    neither is ever written to the log. ``change_log_scope`` names the tenant, target and credential
    the entry is filed under.
    """

    change_log_secrets: tuple[str, ...] = ()
    change_log_hashes: tuple[str, ...] = ()

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return (
            getattr(self, "tenant_id", None),
            getattr(self, "target_id", None),
            getattr(self, "credential_id", None),
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        row = cast(models.Model, self)
        model = type(row)
        using = kwargs.get("using") or router.db_for_write(model, instance=row)
        with transaction.atomic(using=using):
            stored = None
            if not row._state.adding and row.pk is not None:
                stored = model._base_manager.using(using).filter(pk=row.pk).first()
            before = snapshot(stored) if stored is not None else None
            super().save(*args, **kwargs)  # type: ignore[misc]
            after = snapshot(row)
            update_fields = kwargs.get("update_fields")
            if before is not None and update_fields is not None:
                names = {_attname(model, name) for name in update_fields}
                after = {key: after[key] if key in names else value for key, value in before.items()}
            record_change(instance=row, before=before, after=after)

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        this = cast(models.Model, self)
        using = using or router.db_for_write(type(this), instance=this)
        with transaction.atomic(using=using):
            # The scope is read before the delete: a cascaded row's parent (a rule's credential, when a
            # tenant goes) can no longer be loaded afterwards.
            doomed = [
                (row, snapshot(row), cast(ChangeLogged, row).change_log_scope())
                for row in _deleted_with(this, using, keep_parents)
            ]
            ids = [row.pk for row, _, _ in doomed]
            result: tuple[int, dict[str, int]] = super().delete(  # type: ignore[misc]
                using=using, keep_parents=keep_parents
            )
            for (row, before, scope), pk in zip(doomed, ids, strict=True):
                row.pk = pk  # Django clears it on delete
                record_change(instance=row, before=before, after=None, scope=scope)
                row.pk = None
        return result


def _deleted_with(instance: models.Model, using: str, keep_parents: bool) -> list[models.Model]:
    """``instance`` and the change-logged rows its delete cascades to."""
    collector = Collector(using=using, origin=instance)
    collector.collect([instance], keep_parents=keep_parents)
    rows: list[models.Model] = [instance]
    for instances in collector.data.values():
        rows.extend(row for row in instances if not _same_row(row, instance))
    for query in collector.fast_deletes:
        rows.extend(query)
    return [row for row in rows if isinstance(row, ChangeLogged) and row.pk is not None]


def _attname(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    return field.attname if isinstance(field, models.Field) else name


def _same_row(row: models.Model, instance: models.Model) -> bool:
    return type(row) is type(instance) and row.pk == instance.pk


def snapshot(instance: models.Model) -> Snapshot:
    """The instance's concrete column values by attribute name (foreign keys as ids), raw."""
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.attname not in _UNSHOWN and not field.primary_key
    }


def change_diff(instance: models.Model, before: Snapshot | None, after: Snapshot | None) -> dict[str, Any]:
    """``{field: {"before": x, "after": y}}`` of what differs, secrets masked (see module doc).

    A created row shows only "after", a deleted one only "before"; empty values of those are left out.
    """
    secrets = getattr(instance, "change_log_secrets", ())
    hashes = getattr(instance, "change_log_hashes", ())
    diff: dict[str, Any] = {}
    for name in (after or before or {}).keys():
        old = before.get(name) if before is not None else None
        new = after.get(name) if after is not None else None
        if before is not None and after is not None and _same(name, old, new, secrets):
            continue
        if (before is None and _empty(new)) or (after is None and _empty(old)):
            continue
        masked = name in secrets or name in hashes
        entry: dict[str, Any] = {}
        if before is not None:
            entry["before"] = _masked(old) if masked else _shown(old)
        if after is not None:
            entry["after"] = _masked(new) if masked else _shown(new)
            if masked and before is not None and old and new:
                entry["after"] = CHANGED
        diff[name] = entry
    return diff


def _same(name: str, old: Any, new: Any, secrets: tuple[str, ...]) -> bool:
    if old == new:
        return True
    if name not in secrets or not old or not new:
        return False
    from gateway.crypto import decrypt_secret

    try:  # re-encrypted under another key is the same secret
        return hmac.compare_digest(decrypt_secret(old).encode(), decrypt_secret(new).encode())
    except Exception:  # an undecryptable value: shown as changed, never raised from a save
        return False


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _masked(value: Any) -> str:
    return SET if value else NOT_SET


def _shown(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return value


def record_change(
    *,
    instance: models.Model,
    before: Snapshot | None,
    after: Snapshot | None,
    actor: str | None = None,
    scope: tuple[int | None, int | None, int | None] | None = None,
    note: str = "",
) -> None:
    """Write the change-log entry for ``instance`` going from ``before`` to ``after`` (None: it did not
    exist, or no longer does), in the caller's transaction. An update that changed nothing is not logged.

    ``actor`` overrides the context's actor (a service that is told who acts); ``scope`` (tenant,
    target, credential ids) is for a model that is not :class:`ChangeLogged`; ``note`` is added to
    the reason. Reads: the context's actor and source. Raises the database's errors.
    """
    from audit.models import AuditEvent
    from audit.records import event_record, sanitise_record

    action = "create" if before is None else "delete" if after is None else "update"
    diff = change_diff(instance, before, after)
    if action == "update" and not diff:
        return
    who = current_change_actor()
    name = actor or who.actor
    object_type = instance._meta.model_name or type(instance).__name__.lower()
    if scope is None:
        scope = instance.change_log_scope() if isinstance(instance, ChangeLogged) else (None, None, None)
    tenant_id, target_id, credential_id = scope
    label = str(instance)
    verb = {"create": "created", "update": "changed", "delete": "deleted"}[action]
    reason = f"{object_type} {label!r} {verb} by {name} ({who.source})" + (f": {note}" if note else "")
    event = event_record(
        kind=AuditEvent.Kind.CHANGE,
        reason=reason,
        tenant_id=tenant_id,
        target_id=target_id,
        credential_id=credential_id,
        http_method="",
        path=f"{who.source}: {action} {object_type} {instance.pk}",
        route=f"{object_type} {instance.pk}",
        details={
            "action": action,
            "object_type": object_type,
            "object_id": instance.pk,
            "object": label,
            "actor": name,
            "source": who.source,
            "changes": diff,
        },
    )
    AuditEvent.objects.create(**sanitise_record(event))
