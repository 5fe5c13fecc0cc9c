"""Test settings for a Celery worker that also runs beat, sealing the audit trail every few seconds.

``tests.settings`` keeps the production schedule (every minute); the sealing acceptance test starts a
worker with ``-B`` on these settings, which seal every ``AUDIT_TEST_SEAL_EVERY_SECONDS`` and send the
task to the worker's own queue ``AUDIT_TEST_QUEUE`` (no other worker on the broker takes it).
"""

import os

from tests.settings import *  # noqa: F403

CELERY_BEAT_SCHEDULE = {
    "seal-audit": {
        "task": "audit.seal",
        "schedule": float(os.environ["AUDIT_TEST_SEAL_EVERY_SECONDS"]),
        "options": {"queue": os.environ["AUDIT_TEST_QUEUE"]},
    },
}
