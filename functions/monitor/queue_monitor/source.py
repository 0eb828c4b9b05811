"""Where the monitor's numbers come from: the queue, built on first use and kept.

In AWS the Upstash REST token is not in the environment: ``UPSTASH_TOKEN_PARAM``
names the Secrets Manager secret that holds it, read by ``Settings.from_env`` when the
queue is built, bypassing Powertools' cache (``_fetch_secret``): on the first run, and
again after a run whose Redis read failed, since the cached queue is dropped then (a
rotated token is picked up that way).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from jobs_core import AwsSecretResolver, Settings

if TYPE_CHECKING:
    from jobs_core import JobQueue

SecretFetcher = Callable[[str], str]

# Read only when the queue is (re)built, and never from Powertools' cache (max age 0):
# after a failure the point is to see a rotated value.
_fetch_secret: SecretFetcher = AwsSecretResolver(max_age_s=0).get


@cache
def get_queue() -> JobQueue:
    """The queue, built on first use and kept for the life of the execution environment.
    Its module (operations, key layout, the Lua scripts) is imported here too, not at
    cold import."""
    from jobs_core import JobQueue

    return JobQueue.from_settings(Settings.from_env(os.environ, resolve_secret=_fetch_secret))
