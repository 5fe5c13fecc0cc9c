"""Audit rows written before event ids existed get one each, and their credential's name and prefix."""

from __future__ import annotations

import uuid

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("audit", "0002_auditevent_meter_notes_auditevent_response_values")]
AFTER = [("audit", "0003_event_id_credential_name_prefix")]


def test_existing_audit_rows_get_unique_event_ids_and_their_credentials_name(transactional_db):
    executor = MigrationExecutor(connection)
    try:
        others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "audit"]
        executor.migrate(BEFORE)
        apps = executor.loader.project_state(BEFORE + others).apps
        tenant = apps.get_model("gateway", "Tenant").objects.create(name="acme")
        credential = apps.get_model("gateway", "Credential").objects.create(
            tenant=tenant, name="ci-bot", prefix="gw_old", secret_hash="x" * 64
        )
        events = apps.get_model("audit", "AuditEvent").objects
        common = {"created_at": timezone.now(), "http_method": "POST", "path": "/", "status_code": 200}
        events.create(request_id="a", credential_id=credential.id, decision="allowed", latency_ms=1, **common)
        events.create(request_id="b", credential_id=999, decision="denied", latency_ms=1, **common)

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        rows = executor.loader.project_state(AFTER + others).apps.get_model("audit", "AuditEvent").objects
        by_request = {row.request_id: row for row in rows.all()}
        assert (by_request["a"].credential_name, by_request["a"].credential_prefix) == ("ci-bot", "gw_old")
        assert (by_request["b"].credential_name, by_request["b"].credential_prefix) == ("", "")
        ids = {row.event_id for row in by_request.values()}
        assert len(ids) == 2 and all(isinstance(event_id, uuid.UUID) for event_id in ids)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
