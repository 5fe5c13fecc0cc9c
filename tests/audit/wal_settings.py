"""Test settings for gateway processes that must share one audit write-ahead directory.

``tests.settings`` gives every process a write-ahead directory of its own (named after its pid);
the crash tests start a second process on the first one's directory, named by
``GATEWAY_AUDIT_WAL_DIR``.
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import GATEWAY

GATEWAY = {**GATEWAY, "AUDIT_WAL_DIR": os.environ["GATEWAY_AUDIT_WAL_DIR"]}
