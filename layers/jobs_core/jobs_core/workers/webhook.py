"""Partner webhooks: Standard Webhooks signing, bounded requests, and an SSRF guard.

Partners supply the URL, so a URL is a request to reach *some* address from
inside our network. ``check_destination`` decides whether we may:

* the scheme is ``https`` (``http`` only in local mode); no credentials in the URL;
* the host is resolved **once**; every address it resolves to must be public:
  loopback, private (RFC 1918, ULA), link-local (169.254.0.0/16 with the cloud
  metadata endpoint 169.254.169.254, fe80::/10), multicast, reserved,
  unspecified, shared (100.64.0.0/10) and other non-global ranges are refused,
  also when wrapped in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64).
  Local mode (``WEBHOOK_ALLOW_LOCAL=1``) admits loopback only, for the local receiver.

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
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ..errors import PermanentJobError, RetryableJobError
from ..redact import redact_text
from .httputil import parse_retry_after

__all__ = [
    "Destination",
    "Resolver",
    "UnsafeDestinationError",
    "WebhookSender",
    "check_destination",
    "refusal_reason",
    "system_resolver",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> addresses`` as strings; raises ``OSError`` when the name does not resolve."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
USER_AGENT = "escrow-jobs-webhooks/1"


class UnsafeDestinationError(PermanentJobError):
    """The webhook URL is refused by the SSRF guard; retrying cannot help."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, in its order, without duplicates."""
    seen: dict[str, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        seen[str(sockaddr[0]).split("%", 1)[0]] = None  # drop an IPv6 zone id
    return list(seen)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a webhook may not go to ``ip``, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = refusal_reason(embedded, allow_loopback=allow_loopback)
            if reason is not None or ip.ipv4_mapped is not None:
                return None if reason is None else f"{reason} (as {ip})"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if ip.is_link_local:
        return "link-local address (cloud metadata endpoint range)"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT) address"
    if not ip.is_global:
        return "address that is not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL that passed the guard, and the checked addresses to connect to, in order."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host name, or the IP literal
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> IPAddress:
        return self.addresses[0]

    def connect_url(self, address: IPAddress | None = None) -> httpx.URL:
        """The URL with a checked address (the first by default) in place of the name."""
        return self.url.copy_with(host=str(address or self.address))

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    @property
    def redacted(self) -> str:
        """Scheme, host and path for logs (a query string may hold a partner's token)."""
        return f"{self.url.scheme}://{self.host_header}{self.url.path}"


def check_destination(url: str, *, allow_local: bool, resolver: Resolver) -> Destination:
    """Validate ``url`` and resolve its host once; raise ``UnsafeDestinationError`` if refused.

    A name that does not resolve raises ``RetryableJobError`` (DNS may recover).
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeDestinationError(f"webhook URL is not a valid URL: {exc}") from None
    allowed_schemes = ("https", "http") if allow_local else ("https",)
    if parsed.scheme not in allowed_schemes:
        raise UnsafeDestinationError(
            f"webhook URL scheme {parsed.scheme!r} refused (only {' or '.join(allowed_schemes)})"
        )
    if parsed.userinfo:
        raise UnsafeDestinationError("webhook URL must not carry credentials")
    host = parsed.raw_host.decode("ascii").strip("[]")
    if not host:
        raise UnsafeDestinationError("webhook URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise RetryableJobError(f"webhook host {host} does not resolve: {exc}") from None
        except ValueError as exc:
            raise UnsafeDestinationError(
                f"webhook host {host} resolved to a non-IP: {exc}"
            ) from None
        if not addresses:
            raise RetryableJobError(f"webhook host {host} resolved to no address")
    for address in addresses:
        reason = refusal_reason(address, allow_loopback=allow_local)
        if reason is not None:
            raise UnsafeDestinationError(f"webhook host {host} refused: {address} is a {reason}")
    unwrapped: dict[IPAddress, None] = {}
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        unwrapped[address] = None
    return Destination(url=parsed, host=host, port=port, addresses=tuple(unwrapped))


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
        from standardwebhooks import Webhook

        destination = check_destination(url, allow_local=self.allow_local, resolver=self._resolver)
        when = (timestamp or datetime.now(UTC)).astimezone(UTC)
        try:
            signature = Webhook(secret).sign(message_id, when, body.decode())
        except Exception:
            raise PermanentJobError(
                "the webhook secret is not a Standard Webhooks secret (whsec_<base64>)"
            ) from None
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
