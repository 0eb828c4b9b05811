"""A backend wrapper that counts round trips: each ``evalsha``/``eval`` is one request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Backend, ScriptArg


class CountingBackend:
    """Wraps any backend and counts requests, for tests and benchmarks."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.round_trips = 0

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        self.round_trips += 1
        return self.inner.evalsha(sha, keys, args)

    def eval(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        self.round_trips += 1
        return self.inner.eval(source, keys, args)

    def evalsha_ro(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        self.round_trips += 1
        return self.inner.evalsha_ro(sha, keys, args)

    def eval_ro(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        self.round_trips += 1
        return self.inner.eval_ro(source, keys, args)

    def close(self) -> None:
        self.inner.close()
