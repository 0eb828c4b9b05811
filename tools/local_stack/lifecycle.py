"""``with server:`` for anything that has ``start() -> Self`` and ``stop()``.

The local servers (Redis, Stripe) and the tests' own (Upstash stand-in, webhook receiver,
fault proxy, cluster) all start and stop the same way; this gives each the with-block once.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self


class StartStopContext:
    """Mixin: ``__enter__`` is ``start()``, ``__exit__`` is ``stop()``."""

    if TYPE_CHECKING:  # provided by the class that mixes this in

        def start(self) -> Self: ...

        def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
