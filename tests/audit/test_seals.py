"""The sealed audit trail: every event sealed exactly once, whatever the writers do meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import override_settings

from audit.canonical import (
    EVENT_FIELDS,
    SEAL_FIELDS,
    canonical_event,
    leaf_hash,
    merkle_root,
    seal_bytes,
    seal_document,
    unpack_manifest,
)
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_chain_seal, audit_seal_run
from audit.signing import NoSigningKey, reset_signing_keys, signature_problem
from audit.verification import verify_chain
from audit.writer import write_records
from tests.audit.helpers import record


def events(count: int, prefix: str, **fields: object) -> list[dict[str, object]]:
    return [record(f"{prefix}-{index}", event_id=uuid.uuid4().hex, **fields) for index in range(count)]


@contextmanager
def signing_keys_set(*keys: str) -> Iterator[None]:
    """Run the block with GATEWAY_AUDIT_SIGNING_KEYS set to ``keys``, the key cache reset both ways."""
    with override_settings(GATEWAY_AUDIT_SIGNING_KEYS=list(keys)):
        reset_signing_keys()
        try:
            yield
        finally:
            reset_signing_keys()
    reset_signing_keys()


def manifest_ids(seal: AuditSeal) -> list[int]:
    return [event_id for event_id, _ in unpack_manifest(bytes(seal.manifest))]


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 as written: split at the largest power of two smaller than n."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    left, right = rfc6962_root(leaves[:split]), rfc6962_root(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.fixture
def tenant(tenant: Any) -> Any:
    """The shared tenant, its creation (a change-log entry) left out: these tests count the events they
    write and the seals they make."""
    AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE).delete()
    return tenant


def test_the_merkle_root_is_rfc_6962s_tree_head():
    leaves = [leaf_hash(str(index).encode()) for index in range(40)]
    for count in range(1, 41):
        assert merkle_root(leaves[:count]) == rfc6962_root(leaves[:count])
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()


def test_the_canonical_form_covers_every_column_but_the_seal_link():
    columns = {field.attname for field in AuditEvent._meta.concrete_fields}
    assert set(EVENT_FIELDS) == columns - {"seal_id"}


def test_the_seal_fields_are_what_the_canonical_seal_is_made_of():
    parameters = inspect.signature(seal_document).parameters
    assert SEAL_FIELDS == tuple(parameters)
    assert set(SEAL_FIELDS) <= {field.attname for field in AuditSeal._meta.concrete_fields}


def test_events_are_sealed_per_tenant_in_signed_chained_seals(transactional_db, tenant):
    write_records(events(5, "acme", tenant_id=tenant.id) + events(2, "none"))

    report = audit_seal_run(max_events=3)

    assert (report.seals, report.events) == (3, 7)  # acme: 3 + 2, no tenant: 2
    first, second = AuditSeal.objects.filter(tenant=tenant).order_by("sequence")
    assert (first.sequence, first.event_count, second.sequence, second.event_count) == (1, 3, 2, 2)
    assert second.previous_hash == hashlib.sha256(seal_bytes(first)).hexdigest() == first.seal_hash
    assert signature_problem(second.key_id, seal_bytes(second), second.signature) is None
    assert AuditSeal.objects.get(tenant__isnull=True).event_count == 2
    assert not AuditEvent.objects.filter(seal__isnull=True).exists()
    assert audit_seal_run().seals == 0  # nothing new: no empty seal


def test_every_event_is_sealed_exactly_once_while_two_writers_insert(transactional_db, tenant):
    # given two writers inserting batches concurrently, and a sealer sealing all the while
    writing = [True]
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for batch in range(20):
                write_records(events(25, f"{name}-{batch}", tenant_id=tenant.id))
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    def sealer() -> None:
        try:
            while writing[0]:
                audit_seal_run(max_events=40)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    for thread in threads + sealers:
        thread.start()
    for thread in threads:
        thread.join()
    writing[0] = False
    for thread in sealers:
        thread.join()

    # when a last run seals what came in after the sealers' last look
    audit_seal_run(max_events=40)

    # then each of the 1,000 events is in exactly one seal, and the chain verifies
    assert not errors
    sealed = [event_id for seal in AuditSeal.objects.all() for event_id in manifest_ids(seal)]
    assert len(sealed) == len(set(sealed)) == AuditEvent.objects.count() == 1000
    assert set(sealed) == set(AuditEvent.objects.values_list("id", flat=True))
    sequences = sorted(AuditSeal.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert verify_chain(tenant_id=tenant.id, since=None, now=AuditSeal.objects.first().created_at).ok


def test_an_event_committed_late_with_a_lower_id_lands_in_a_later_seal(transactional_db, tenant):
    # given a writer whose transaction took an id and has not committed yet
    inserted, commit = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with transaction.atomic():
            write_records(events(1, "late", tenant_id=tenant.id))
            inserted.set()
            commit.wait(10)
        connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(10)
    write_records(events(3, "early", tenant_id=tenant.id))

    # when a seal is made before it commits, and another after
    first = audit_chain_seal(tenant_id=tenant.id, max_events=100)
    commit.set()
    thread.join()
    second = audit_chain_seal(tenant_id=tenant.id, max_events=100)

    # then the late event, whose id is below the first seal's, is in the second seal
    late = AuditEvent.objects.get(request_id="late-0")
    assert first is not None and second is not None
    assert late.id < first.first_event_id
    assert late.seal_id == second.id and manifest_ids(second) == [late.id]
    assert verify_chain(tenant_id=tenant.id, since=None, now=second.created_at).ok


def test_no_signing_key_seals_nothing_and_says_why(transactional_db):
    write_records(events(2, "unsigned"))
    with signing_keys_set():
        with pytest.raises(NoSigningKey, match="GATEWAY_AUDIT_SIGNING_KEYS"):
            audit_seal_run()
    assert AuditEvent.objects.filter(seal__isnull=True).count() == 2


def test_without_a_broker_the_gateway_seals_the_trail_itself_and_survives_a_failed_run(
    transactional_db, monkeypatch
):
    import audit.services as services
    from audit.runtime import keep_audit_sealed

    write_records(events(3, "embedded"))
    real_run = services.audit_seal_run
    runs = {"count": 0}

    def failing_once() -> object:
        runs["count"] += 1
        if runs["count"] == 1:
            raise RuntimeError("database briefly away")
        return real_run()

    monkeypatch.setattr(services, "audit_seal_run", failing_once)

    def all_sealed() -> bool:
        try:
            return not AuditEvent.objects.filter(seal__isnull=True).exists()
        finally:
            connections.close_all()

    async def run_briefly() -> None:
        task = asyncio.get_running_loop().create_task(keep_audit_sealed(0.05))
        deadline = time.monotonic() + 10
        while not await asyncio.to_thread(all_sealed) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_briefly())
    assert runs["count"] >= 2
    assert AuditSeal.objects.get().event_count == 3


def test_a_malformed_signing_key_fails_the_system_check_and_none_warns():
    from gateway.checks import check_audit_signing_keys

    with override_settings(GATEWAY_AUDIT_SIGNING_KEYS=["not-a-key"]):
        [error] = check_audit_signing_keys()
    with override_settings(GATEWAY_AUDIT_SIGNING_KEYS=[]):
        [warning] = check_audit_signing_keys()
    assert error.id == "gateway.E005" and "entry #1" in error.msg and "not-a-key" not in error.msg
    assert warning.id == "gateway.W002" and "not sealed" in warning.msg


def test_an_event_with_a_huge_number_is_sealed_and_verifies(transactional_db, tenant):
    # PostgreSQL's jsonb gives a float such as 1e300 back as an integer beyond orjson's 64 bits
    write_records(
        events(1, "huge", tenant_id=tenant.id, response_values={"$.total": 1e300, "$.n": -(10**30)})
    )

    seal = audit_chain_seal(tenant_id=tenant.id, max_events=10)

    assert seal is not None and seal.event_count == 1
    row = AuditEvent.objects.values(*EVENT_FIELDS).get()
    assert f'"$.n":{-(10**30)}'.encode() in canonical_event(row)
    assert verify_chain(tenant_id=tenant.id, since=None, now=seal.created_at).ok


def test_a_chain_that_fails_to_seal_does_not_hold_back_the_others(transactional_db, tenant, monkeypatch):
    from django.db import OperationalError

    import audit.services as services

    write_records(events(2, "acme", tenant_id=tenant.id) + events(2, "none"))
    real_seal = services.audit_chain_seal

    def failing_for_acme(*, tenant_id: int | None, max_events: int) -> AuditSeal | None:
        if tenant_id == tenant.id:
            raise OperationalError("lock timeout")
        return real_seal(tenant_id=tenant_id, max_events=max_events)

    monkeypatch.setattr(services, "audit_chain_seal", failing_for_acme)
    report = audit_seal_run()
    monkeypatch.undo()

    assert (report.seals, report.events, report.failed_chains) == (1, 2, 1)
    assert audit_seal_run().events == 2  # the next run seals what this one could not
