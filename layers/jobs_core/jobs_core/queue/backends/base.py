"""The small protocol every storage backend implements.

The queue only ever runs Lua scripts, so a backend needs two calls, each also in its
read-only form (EVALSHA_RO / EVAL_RO, for the scripts that only read). A backend
translates its driver's errors once, here at the boundary, into ``BackendError``
(``transient=True`` when resending may help) or ``ScriptNotLoadedError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

ScriptArg = str | int | float


class Backend(Protocol):
    """A Redis that runs scripts. ``name`` is ``upstash``, ``redis`` or ``memory``."""

    name: str

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """Run a cached script; raise ``ScriptNotLoadedError`` if the server lacks it."""
        ...

    def eval(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """Run a script by its source (the server caches it for later ``evalsha``)."""
        ...

    def evalsha_ro(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """``evalsha`` as EVALSHA_RO: the server refuses any write, and a read-only user
        (an ACL without write or EVALSHA rights) may run it."""
        ...

    def eval_ro(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """``eval`` as EVAL_RO."""
        ...

    def close(self) -> None: ...
