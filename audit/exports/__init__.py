"""Exports of a tenant's audit events for a period, and the offline proof that they are untouched.

An export is two files: the events (``csv``, ``jsonl``) or a summary of them (``pdf``), and beside it
``<file>.manifest.json``, the signed manifest (:mod:`audit.exports.manifest` documents its layout).

- **JSON Lines**: one event per line, each line exactly the event's canonical form (audit/canonical.py),
  so ``SHA-256(0x00 || line)`` is the event's leaf hash in its seal.
- **CSV**: a header row of the canonical columns (``EVENT_FIELDS``), then one row per event; a text
  cell holds the text, with a ``'`` put in front of a text that starts with ``= + - @ '``, a tab or a
  carriage return, so a spreadsheet never runs it as a formula (the verifier takes it off again); a
  number is its JSON form, a JSON column its compact JSON, a missing value an empty cell.
- **PDF**: the summary a reviewer hands an auditor (:mod:`audit.exports.pdf`).

Events are the tenant's with ``since <= created_at < until``, in id order, read in one snapshot with the
seals (so an event sealed while the export runs is either sealed in the manifest or listed unsealed,
never neither). Modules: ``formats`` (encoding rows), ``events`` (reading them in constant memory),
``manifest`` (the signed manifest), ``summary`` and ``pdf`` (the summary), ``verify`` (the offline
check ``verify_export`` runs), ``services`` (writing an export, the admin's background exports).
"""
