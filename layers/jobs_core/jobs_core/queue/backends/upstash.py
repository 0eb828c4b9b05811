"""Upstash Redis over its REST API, through the ``upstash-redis`` SDK.

The SDK's edges, and what this module does about each:
- its httpx client has no timeout: we replace it with one that has;
- it retries any failure after a fixed 3 s sleep and resends the command: we turn
  that off (``rest_retries=0``) and retry in ``scripts.py`` with short delays that fit
  a request path; every script is safe to resend;
- it does not check HTTP status codes (an HTML error page surfaces as a JSON decode
  error): a response hook turns any non-JSON or 5xx answer into ``BackendError``
  with the status;
- it has no NOSCRIPT fallback: we map the error so ``scripts.py`` resends with EVAL;
- Upstash runs no blocking commands, so the processor polls (one command when idle).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from ...errors import BackendError, ScriptNotLoadedError
from .base import ScriptArg

T = TypeVar("T")
NAME = "upstash"


class _HttpStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        super().__init__(body)


def _check_response(response: httpx.Response) -> None:
    """Refuse answers the SDK would misread: Redis errors come as JSON, anything else is HTTP."""
    ctype = response.headers.get("content-type", "")
    if response.status_code >= 500 or "json" not in ctype:
        response.read()
        raise _HttpStatusError(response.status_code, response.text[:200])


def make_http_client(timeout_s: float) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        event_hooks={"response": [_check_response]},
    )


class UpstashBackend:
    """Runs scripts on an ``upstash_redis.Redis``; ``from_credentials`` builds a safe one."""

    name = NAME

    def __init__(self, client: Redis) -> None:
        self._client = client

    @classmethod
    def from_credentials(cls, url: str, token: str, *, timeout_s: float) -> UpstashBackend:
        client = Redis(url=url, token=token, rest_retries=0, allow_telemetry=False)
        # The SDK exposes no setting for its transport; swapping it is the one way to get
        # a timeout and a status check (the SDK version is pinned in requirements.txt).
        http = client._http
        http._client.close()
        http._client = make_http_client(timeout_s)
        return cls(client)

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.evalsha(sha, list(keys), [str(a) for a in args]))

    def eval(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.eval(source, list(keys), [str(a) for a in args]))

    def evalsha_ro(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.evalsha_ro(sha, list(keys), [str(a) for a in args]))

    def eval_ro(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.eval_ro(source, list(keys), [str(a) for a in args]))

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except UpstashError as exc:
            message = str(exc)
            if message.startswith("NOSCRIPT"):
                raise ScriptNotLoadedError(NAME, message) from exc
            raise BackendError(NAME, message) from exc
        except _HttpStatusError as exc:
            transient = exc.status >= 500 or exc.status in (408, 429)
            raise BackendError(
                NAME, f"HTTP error: {exc}", status=exc.status, transient=transient
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(NAME, f"timed out: {exc!r}", transient=True) from exc
        except httpx.TransportError as exc:
            raise BackendError(NAME, f"unreachable: {exc!r}", transient=True) from exc
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise BackendError(NAME, f"unreadable response: {exc!r}") from exc
