"""Which webhook URLs we may deliver to: the one SSRF guard, shared by registration and delivery.

Partners supply the URL, so a URL is a request to reach *some* address from inside
our network. ``check_destination`` decides whether we may:

* the scheme is ``https`` (``http`` only in local mode); no credentials in the URL;
* an IP literal in any notation a resolver or browser accepts (dotted, decimal
  ``2130706433``, octal ``0177.0.0.1``, hex ``0x7f000001``, short ``127.1``,
  bracketed IPv6 including IPv4-mapped ``[::ffff:127.0.0.1]``) is read as the address
  it means; a name is resolved **once** through the injected ``Resolver``;
* every address must be public: loopback, private (RFC 1918, ULA), link-local
  (169.254.0.0/16 with the cloud metadata endpoint 169.254.169.254, fe80::/10),
  multicast, reserved, unspecified, shared (100.64.0.0/10, CGNAT) and other
  non-global ranges are refused, also when wrapped in IPv6 (IPv4-mapped, 6to4, NAT64).
  Local mode admits loopback only, for the local receiver.

The escrow API calls ``check_webhook_url`` when an escrow is created (a refusal is a
400 naming ``webhookUrl``); the webhook sender calls ``check_destination`` again at
send time and connects to the checked address (DNS rebinding).

Example::

    check_webhook_url("https://0x7f000001/hook", allow_local=False, resolver=system_resolver)
    # UnsafeDestinationError: webhook host 0x7f000001 refused: 127.0.0.1 is a loopback address
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .errors import PermanentJobError, RetryableJobError

__all__ = [
    "Destination",
    "IPAddress",
    "Resolver",
    "UnresolvableHostError",
    "UnsafeDestinationError",
    "check_destination",
    "check_webhook_url",
    "numeric_ipv4",
    "refusal_reason",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> addresses`` as strings; raises ``OSError`` when the name does not resolve."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


class UnsafeDestinationError(PermanentJobError):
    """The webhook URL is refused by the SSRF guard; retrying cannot help."""


class UnresolvableHostError(RetryableJobError):
    """The webhook host does not resolve (now): at send time DNS may recover."""


_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host means (WHATWG URL and ``inet_aton`` rules), or None.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` all mean 127.0.0.1. A host
    whose last label is numeric but that is no valid address raises
    ``UnsafeDestinationError`` (a browser refuses it too).

    >>> str(numeric_ipv4("0x7f.0.0.01"))
    '127.0.0.1'
    >>> numeric_ipv4("partner.example") is None
    True
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot
    if not labels or not _NUMERIC_PART.match(labels[-1]):
        return None
    values: list[int] = []
    for label in labels:
        if not _NUMERIC_PART.match(label):
            raise UnsafeDestinationError(f"webhook host {host} is not a valid IPv4 address")
        if label[:2].lower() == "0x":
            values.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if any(c in "89" for c in label):
                raise UnsafeDestinationError(f"webhook host {host} is not a valid IPv4 address")
            values.append(int(label, 8))
        else:
            values.append(int(label))
    *head, last = values
    if len(values) > 4 or any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise UnsafeDestinationError(f"webhook host {host} is not a valid IPv4 address")
    number = last
    for i, value in enumerate(head):
        number += value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


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
        literal = numeric_ipv4(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHostError(f"webhook host {host} does not resolve: {exc}") from None
        except ValueError as exc:
            raise UnsafeDestinationError(
                f"webhook host {host} resolved to a non-IP: {exc}"
            ) from None
        if not addresses:
            raise UnresolvableHostError(f"webhook host {host} resolved to no address")
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


def check_webhook_url(url: str, *, allow_local: bool, resolver: Resolver) -> None:
    """Refuse at registration every URL delivery would refuse (``UnsafeDestinationError``);
    a host that does not resolve is refused too (``UnresolvableHostError``)."""
    check_destination(url, allow_local=allow_local, resolver=resolver)
