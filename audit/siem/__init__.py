"""Streaming the audit trail to a SIEM: per tenant, every event (calls, tool events and change-log
entries) is forwarded as it is written to a syslog collector, an HTTPS webhook or a JSON Lines file.

Delivery runs outside the proxy (the proxy does nothing per sink): every ``GATEWAY_SIEM_POLL_SECONDS``
the Celery beat task ``audit.siem_deliver`` (in the embedded default, a thread of the gateway
process) reads each enabled sink's events after its cursor, sends a bounded batch and advances the
cursor only once the sink acknowledged it, so delivery is at-least-once and each record carries its
``event_id`` for the receiver to drop duplicates. A failing sink backs off (exponential, with jitter)
without holding up the others; a lease on its state row keeps two processes from sending one batch.

- :mod:`audit.siem.config`: each kind's settings, validated (the one place they are checked);
- :mod:`audit.siem.records`: what a delivered record is (the event's canonical JSON plus names);
- :mod:`audit.siem.cursor`: the id cursor and the gaps it must keep watching;
- :mod:`audit.siem.syslog`, :mod:`audit.siem.webhook`, :mod:`audit.siem.jsonl`: the transports;
- :mod:`audit.siem.services`: creating sinks and the delivery run; :mod:`audit.siem.runtime`: the
  embedded loop.
"""
