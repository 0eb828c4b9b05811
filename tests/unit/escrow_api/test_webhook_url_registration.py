"""Registration refuses every webhook URL the delivery guard would refuse (issue 14).

The table covers the notations of one address (dotted, decimal, octal, hex, short,
IPv4-mapped IPv6) and names that resolve, through an injected resolver, to addresses
that must never be reached. The same table is run through the delivery guard: the two
agree because they are one function.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from escrow.errors import BadRequestError
from escrow.models import CreateEscrowRequest, parse_body
from jobs_core import UnsafeDestinationError
from jobs_core.webhook_urls import check_destination

from tests.support.resolvers import PARTNER_DNS, StaticResolver

BODY: dict[str, Any] = {
    "amount": 10000,
    "currency": "USD",
    "buyer": {"id": "user-buyer-1", "email": "buyer@example.com"},
    "seller": {"id": "user-seller-1", "email": "seller@example.com"},
    "webhookSecretRef": "partner-secret",
}

REFUSED = [
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://127.0.0.1/",
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # CGNAT
    "https://224.0.0.1/",  # multicast
    "https://240.0.0.1/",  # reserved
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "https://[::ffff:a9fe:a9fe]/",  # the metadata address, mapped, in hex
    "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "https://0x7f000001/",  # hex
    "https://2130706433/",  # decimal
    "https://017700000001/",  # octal
    "https://0177.0.0.1/",  # dotted octal
    "https://0x7f.0.0.1/",  # dotted hex
    "https://127.1/",  # short form
    "https://0xa9.0xfe.0xa9.0xfe/",  # metadata, dotted hex
    "https://3232235777/",  # 192.168.1.1, decimal
    "https://1.2.3.256/",  # not an address at all
    "http://partner.example/hooks",  # not https
    "ftp://partner.example/hooks",
    "https://user:pw@partner.example/hooks",  # credentials
    "https://internal.partner.example/hooks",  # resolves to 10.1.2.3
    "https://mixed.partner.example/hooks",  # one of its addresses is the metadata endpoint
    "https://rebind.partner.example/hooks",  # resolves to loopback, IPv4-mapped
    "https://nowhere.partner.example/hooks",  # does not resolve
    "not a url",
]

ACCEPTED = [
    "https://partner.example/hooks",
    "https://partner.example.com/hooks?token=x",
    "https://hooks.partner.example:8443/escrow",
    "https://93.184.215.14/hooks",
    "https://1572395790/hooks",  # 93.184.215.14, decimal: public, so allowed
    "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hooks",
]


def create(url: str, **context: Any) -> CreateEscrowRequest:
    context.setdefault("webhook_resolver", PARTNER_DNS)
    body = json.dumps({**BODY, "webhookUrl": url}).encode()
    return parse_body(body, CreateEscrowRequest, context=context)


@pytest.mark.parametrize("url", REFUSED)
def test_registration_refuses_with_400_naming_webhook_url(url: str) -> None:
    with pytest.raises(BadRequestError) as info:
        create(url)
    assert (info.value.status, info.value.field) == (400, "webhookUrl"), info.value.message


@pytest.mark.parametrize("url", [u for u in REFUSED if "nowhere" not in u])
def test_delivery_refuses_the_same_urls(url: str) -> None:
    with pytest.raises(UnsafeDestinationError):
        check_destination(url, allow_local=False, resolver=PARTNER_DNS)


@pytest.mark.parametrize("url", ACCEPTED)
def test_registration_accepts_public_https_urls(url: str) -> None:
    assert create(url).webhook_url == url
    check_destination(url, allow_local=False, resolver=PARTNER_DNS)


def test_the_resolver_is_asked_about_the_name() -> None:
    resolver = StaticResolver({"partner.example": ["10.9.9.9"]})
    with pytest.raises(BadRequestError) as info:
        create("https://partner.example/hooks", webhook_resolver=resolver)
    assert resolver.asked == ["partner.example"]
    assert "10.9.9.9 is a private address" in info.value.message


def test_local_mode_admits_http_loopback_only() -> None:
    assert create("http://127.0.0.1:8080/hook", allow_http_localhost=True).webhook_url
    for url in ("http://10.0.0.1/hook", "http://0x0a000001/hook", "https://169.254.169.254/"):
        with pytest.raises(BadRequestError):
            create(url, allow_http_localhost=True)
