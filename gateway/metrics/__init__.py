"""Prometheus metrics: what is counted on the hot path, what is sampled, and the ``/metrics`` endpoint.

- :mod:`gateway.metrics.recording`: the metric objects and the per-call record (``record_call``, run
  by ``audit.steps.record_audit`` once per request) and the meters' fail-open hook.
- :mod:`gateway.metrics.sampling`: gauges set from each process's state (audit lag, policy cache) once
  a second by a runtime task, and by the scraping process just before it answers.
- :mod:`gateway.metrics.multiprocess`: ``serve --workers N`` shares the values through
  prometheus-client's multiprocess mode (one memory-mapped file per process and metric kind).
- :mod:`gateway.metrics.endpoint`: ``GET /metrics``, behind a token or an allowed network.

Every label value is bounded: target slugs come from configuration (a request for an unknown slug is
counted under ``(none)``), decisions and reason classes from the code, never from what an agent sent.
"""

import os as _os

# prometheus-client opens its files in PROMETHEUS_MULTIPROC_DIR as soon as the metrics are defined (at
# import, in every process with the variable: management commands too): the directory must exist.
if _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _os.makedirs(_os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
