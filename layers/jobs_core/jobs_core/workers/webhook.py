"""Partner webhooks: Standard Webhooks signing, bounded requests, and an SSRF guard.

The SSRF guard (``jobs_core.webhook_urls``, shared with the escrow API's registration
check) validates the URL and resolves its host once.

``WebhookSender`` then connects to the address that was checked, not to the
name (a second DNS answer could differ: DNS rebinding). The request URL carries
the IP; the ``Host`` header keeps the partner's name, and for https the TLS
``server_hostname`` is the partner's name through httpcore's ``sni_hostname``
request extension, so SNI is sent and the certificate is verified against the
name. Connections are not kept alive: httpcore pools by (scheme, IP, port), and
a pooled TLS connection verified for one name must not carry another name's
request. No proxies from the environment (``trust_env=False``), no redirects.

Bounds: connect timeout, per-read timeout, and a total deadline enforced by a
watchdog that shuts the socket down (httpx has no total timeout; a server that
drips one byte per read would otherwise hold the worker). At most
``max_response_bytes`` of the response are read, undecoded.

Outcomes: 2xx is delivered; 408, 429, 5xx, timeouts and network errors are
``RetryableJobError`` (``Retry-After`` honoured); 3xx (not followed) and other
4xx are ``PermanentJobError``. The ``webhook-id`` is derived from the job, so it
is the same on every retry and redelivery: the partner dedupes on it.

Example::

    sender = WebhookSender(allow_local=False)
    sender.deliver(url="https://partner.example/hooks", secret="whsec_...",
                   message_id="msg_01J...", body=b'{"type":"escrow.status_changed",...}')
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ..errors import EndpointGoneError, PermanentJobError, RetryableJobError
from ..redact import redact_text
from ..webhook_urls import (
    Destination,
    Resolver,
    UnsafeDestinationError,
    check_destination,
    refusal_reason,
    system_resolver,
)
from .httputil import parse_retry_after

__all__ = [
    "Destination",
    "Resolver",
    "UnsafeDestinationError",
    "WebhookSender",
    "check_destination",
    "parse_secrets",
    "refusal_reason",
    "sign",
    "system_resolver",
]

log = logging.getLogger(__name__)

USER_AGENT = "escrow-jobs-webhooks/1"


def parse_secrets(value: str) -> list[str]:
    """The secrets a partner's secret value holds: one or more ``whsec_<base64>``
    separated by spaces, commas or newlines (during a rotation: the old and the new).

    Raises ``PermanentJobError`` (naming the position, never the value) when the value
    is empty or an entry is not a Standard Webhooks secret.

    >>> len(parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2VjcmV0LXR3by1zZWNyZXQ="))
    2
    """
    from standardwebhooks import Webhook

    entries = value.replace(",", " ").split()
    if not entries:
        raise PermanentJobError("the webhook secret is empty")
    for i, entry in enumerate(entries, 1):
        try:
            if not entry.startswith("whsec_"):
                raise ValueError
            Webhook(entry)
        except Exception:
            raise PermanentJobError(
                f"the webhook secret is malformed: entry {i} of {len(entries)} is not a "
                "Standard Webhooks secret (whsec_<base64>)"
            ) from None
    return entries


def sign(secret: str, message_id: str, when: datetime, body: bytes) -> str:
    """The ``webhook-signature`` header: one space-separated ``v1,<sig>`` per secret."""
    from standardwebhooks import Webhook

    text = body.decode()
    return " ".join(Webhook(s).sign(message_id, when, text) for s in parse_secrets(secret))


class _Deadline:
    """Shuts the request's socket down when the total time is up.

    httpcore reports the network stream through the ``trace`` request extension
    once connected (and again once TLS is up); the timer thread shuts that
    socket down, which wakes the blocked read with an error.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._stream: Any = None
        self._finished = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            with self._lock:
                self._stream = info.get("return_value")
                if self.fired:
                    self._abort()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            self._abort()

    def _abort(self) -> None:
        stream = self._stream
        if stream is None:
            return
        sock = stream.get_extra_info("socket")
        if sock is not None:
            # socket.socket.shutdown on an SSLSocket acts on the descriptor and leaves
            # the SSL object alone (SSLSocket.shutdown would drop it under the reader).
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
        self._timer.cancel()


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: int
    address: str  # the address connected to


class WebhookSender:
    """POSTs signed webhook bodies to checked destinations. Thread-safe."""

    def __init__(
        self,
        *,
        allow_local: bool = False,
        resolver: Resolver = system_resolver,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        total_timeout_s: float = 15.0,
        max_response_bytes: int = 64 * 1024,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allow_local = allow_local
        self._resolver = resolver
        self._total_timeout_s = total_timeout_s
        self._max_response_bytes = max_response_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self._client.close()

    def deliver(
        self,
        *,
        url: str,
        secret: str,
        message_id: str,
        body: bytes,
        timestamp: datetime | None = None,
    ) -> DeliveryResult:
        """Sign and POST ``body``; return on 2xx, else raise Retryable/PermanentJobError."""
        destination = check_destination(url, allow_local=self.allow_local, resolver=self._resolver)
        when = (timestamp or datetime.now(UTC)).astimezone(UTC)
        signature = sign(secret, message_id, when, body)
        deadline = _Deadline(self._total_timeout_s)
        extensions: dict[str, Any] = {"trace": deadline.trace}
        if destination.url.scheme == "https":
            extensions["sni_hostname"] = destination.host
        headers = {
            "Host": destination.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }
        deadline.start()
        try:
            # Each checked address in turn while the connection itself fails (a name with
            # IPv6 and IPv4 addresses, one unreachable); once connected, that answer counts.
            for address in destination.addresses:
                request = self._client.build_request(
                    "POST",
                    destination.connect_url(address),
                    content=body,
                    headers=headers,
                    extensions=extensions,
                )
                where = f"{destination.redacted} ({address})"
                status, retry_after, excerpt, connect_failed = self._exchange(request, deadline)
                if not (connect_failed and not deadline.fired):
                    break
        finally:
            deadline.finish()
        if status is None:
            raise RetryableJobError(f"webhook to {where}: {excerpt}")
        text = f"webhook to {where}: HTTP {status}"
        if excerpt:
            text += f": {redact_text(excerpt)}"
        if 200 <= status < 300:
            log.info("webhook %s delivered to %s: HTTP %s", message_id, where, status)
            return DeliveryResult(status=status, address=str(address))
        if status in (408, 429) or status >= 500:
            raise RetryableJobError(text, delay_s=parse_retry_after(retry_after))
        if 300 <= status < 400:
            raise PermanentJobError(text + " (redirects are not followed)")
        if status == 410:
            raise EndpointGoneError(text + " (the endpoint is gone: its partner is disabled)")
        raise PermanentJobError(text)

    def _exchange(
        self, request: httpx.Request, deadline: _Deadline
    ) -> tuple[int | None, str | None, str, bool]:
        """``(status, Retry-After, body excerpt, False)``, or ``(None, None, why, connect
        failed)`` when there is no answer."""
        try:
            response = self._client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            return None, None, f"timed out ({type(exc).__name__})", True
        except httpx.TimeoutException as exc:
            return None, None, f"timed out ({type(exc).__name__})", False
        except httpx.HTTPError as exc:
            why = "total timeout exceeded" if deadline.fired else f"{type(exc).__name__}: {exc}"
            return None, None, why, isinstance(exc, httpx.ConnectError)
        excerpt = b""
        try:
            received = 0
            for chunk in response.iter_raw(chunk_size=16 * 1024):
                if len(excerpt) < 200:
                    excerpt += chunk[: 200 - len(excerpt)]
                received += len(chunk)
                if received >= self._max_response_bytes:
                    break
        except httpx.HTTPError:
            pass  # the status is what counts; a body cut short does not change it
        finally:
            response.close()
        return (
            response.status_code,
            response.headers.get("retry-after"),
            excerpt.decode("utf-8", "replace").strip(),
            False,
        )
