"""Users with ACL rules on the session's own redis-server, removed afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import redis


@contextlib.contextmanager
def acl_user(redis_url: str, rules: Sequence[str], *, name: str | None = None) -> Iterator[str]:
    """Create a user with ``rules``; yield a ``redis://user:password@host:port/0`` URL."""
    user = name or f"u-{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(user, enabled=True, reset=True)  # start from nothing
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", *rules)
    parts = urlsplit(redis_url)
    url = urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))
    try:
        yield url
    finally:
        admin.acl_deluser(user)
        admin.close()
