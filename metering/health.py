"""Whether this event loop's meters are enforced, and what was let through or refused while not.

The limiter reports every call to the counters' store (:meth:`MeterStoreHealth.store_answered`,
:meth:`MeterStoreHealth.store_failed`); the meter steps report what they did with calls they could
not check. A change of state is logged once, as a WARNING, both ways: the first failure after
answers and the first answer after failures. The counters never reset; ``/readyz`` shows them:
calls let through by open meters, calls refused by closed ones (503), and additions of response
values that could not be counted. Calls let through are also counted in the Prometheus metrics
(``gateway_meter_fail_opens_total``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from gateway.metrics.recording import record_meter_fail_open

logger = logging.getLogger(__name__)


class MeterStoreHealth:
    """The meters' enforcement state on one event loop, and counts of calls not enforced."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.enforced = True
        self.since = time.time()
        self.last_error = ""
        self.outages = 0
        self.calls_passed_unenforced = 0
        self.calls_refused_unenforced = 0
        self.values_not_counted = 0
        self._passed_at_outage = 0
        self._refused_at_outage = 0

    def store_answered(self) -> None:
        if self.enforced:
            return
        passed = self.calls_passed_unenforced - self._passed_at_outage
        refused = self.calls_refused_unenforced - self._refused_at_outage
        logger.warning(
            "meters enforced again: %s answers after %.1f s; meanwhile %d calls passed unenforced "
            "(fail-open) and %d were refused (fail-closed)",
            self.store,
            time.time() - self.since,
            passed,
            refused,
        )
        self.enforced, self.since = True, time.time()

    def store_failed(self, reason: str) -> None:
        self.last_error = reason
        if not self.enforced:
            return
        logger.warning(
            "meters not enforced: %s; open meters let calls through, closed meters refuse them (503)",
            reason,
        )
        self.enforced, self.since = False, time.time()
        self.outages += 1
        self._passed_at_outage = self.calls_passed_unenforced
        self._refused_at_outage = self.calls_refused_unenforced

    def call_unenforced(self, *, refused: bool) -> None:
        if refused:
            self.calls_refused_unenforced += 1
        else:
            self.calls_passed_unenforced += 1
            record_meter_fail_open()

    def values_lost(self) -> None:
        self.values_not_counted += 1

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` details: the state, since when, and the counts since start-up."""
        return {
            "store": self.store,
            "enforced": self.enforced,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds"),
            "last_error": self.last_error,
            "outages": self.outages,
            "calls_passed_unenforced": self.calls_passed_unenforced,
            "calls_refused_unenforced": self.calls_refused_unenforced,
            "values_not_counted": self.values_not_counted,
        }
