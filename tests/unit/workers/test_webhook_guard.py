"""The SSRF guard's decisions, without any network (the resolver is injected)."""

from __future__ import annotations

import ipaddress

import pytest
from jobs_core import PermanentJobError, RetryableJobError
from jobs_core.workers.httputil import parse_retry_after
from jobs_core.workers.webhook import UnsafeDestinationError, check_destination, refusal_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::abcd", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff05::2", "multicast"),
        ("240.1.2.3", "reserved"),
        ("255.255.255.255", "reserved"),  # broadcast
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.100.100.200", "shared"),  # carrier-grade NAT (and Alibaba's metadata service)
        ("192.0.2.10", "private"),  # documentation range
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.1.1.1", "private"),
        ("2002:a00:1::1", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 wrapping 169.254.169.254
        ("64:ff9b::808:808", "reserved"),  # NAT64 of a public address: still not ours to reach
    ],
)
def test_refused(address: str, reason: str) -> None:
    found = refusal_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_local_mode_admits_loopback_only() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), allow_loopback=True) is None
    assert (
        refusal_reason(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) == "private address"
    )


def test_destination_pins_the_first_address_and_keeps_the_name() -> None:
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    dest = check_destination(
        "https://Partner.Example:8443/h?x=1", allow_local=False, resolver=resolver
    )
    assert calls == [("partner.example", 8443)]
    assert str(dest.address) == "93.184.215.14"
    assert str(dest.connect_url()) == "https://93.184.215.14:8443/h?x=1"
    assert len(dest.addresses) == 2  # both checked; the second is tried if the first fails
    assert dest.host_header == "partner.example:8443"
    assert dest.redacted == "https://partner.example:8443/h"  # no query string in logs


def test_ipv6_and_mapped_destinations() -> None:
    dest = check_destination(
        "https://v6.example/", allow_local=False, resolver=lambda h, p: ["2606:4700::1111"]
    )
    assert str(dest.connect_url()) == "https://[2606:4700::1111]/"
    mapped = check_destination(
        "https://m.example/", allow_local=False, resolver=lambda h, p: ["::ffff:8.8.8.8"]
    )
    assert str(mapped.address) == "8.8.8.8"


def test_idn_hosts_are_resolved_in_ascii() -> None:
    seen: list[str] = []
    check_destination(
        "https://bücher.example/",
        allow_local=False,
        resolver=lambda h, p: seen.append(h) or ["8.8.8.8"],
    )
    assert seen == ["xn--bcher-kva.example"]


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://partner.example/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://partner.example/", "scheme 'http'"),
        ("https://u:p@partner.example/", "credentials"),
        ("not a url", "scheme"),
    ],
)
def test_malformed_or_unsafe_urls(url: str, match: str) -> None:
    with pytest.raises(UnsafeDestinationError, match=match):
        check_destination(url, allow_local=False, resolver=lambda h, p: ["8.8.8.8"])
    assert issubclass(UnsafeDestinationError, PermanentJobError)


def test_dns_failure_is_retryable_and_empty_answers_too() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError("temporary failure in name resolution")

    with pytest.raises(RetryableJobError):
        check_destination("https://p.example/", allow_local=False, resolver=broken)
    with pytest.raises(RetryableJobError):
        check_destination("https://p.example/", allow_local=False, resolver=lambda h, p: [])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 120 ", 120.0), ("99999", 3600.0), ("", None), (None, None), ("soon", None),
     ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0), ("Wed, 01 Jan 2025 00:00:00 GMT", 0.0)],
)  # fmt: skip
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now_s=1_735_689_600.0) == seconds
