"""Request bodies: 400 naming the field at fault, 413 over 16 KiB, aliases, webhook URL rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from escrow.errors import BadRequestError, PayloadTooLargeError
from escrow.models import (
    MAX_BODY_BYTES,
    CreateEscrowRequest,
    ReleaseRequest,
    ResolveRequest,
    parse_body,
)

from tests.support.resolvers import PARTNER_DNS

GOOD: dict[str, Any] = {
    "amount": 10000,
    "currency": "usd",
    "buyer": {"id": "user-buyer-1", "email": "buyer@example.com"},
    "seller": {"id": "user-seller-1", "email": "seller@example.com", "name": "Sam"},
    "webhookUrl": "https://partner.example.com/hooks",
    "webhookSecretRef": "partner-secret",
}


def create(body: dict[str, Any], **context: Any) -> CreateEscrowRequest:
    context.setdefault("webhook_resolver", PARTNER_DNS)
    return parse_body(json.dumps(body).encode(), CreateEscrowRequest, context=context)


def test_a_good_create_body_parses_and_normalises_the_currency() -> None:
    req = create(GOOD)
    assert (req.amount, req.currency, req.seller.name) == (10000, "USD", "Sam")
    assert req.webhook_url == "https://partner.example.com/hooks"


def test_snake_case_names_are_accepted_too() -> None:
    body = {**GOOD, "webhook_url": GOOD["webhookUrl"], "webhook_secret_ref": "s"}
    del body["webhookUrl"], body["webhookSecretRef"]
    assert create(body).webhook_secret_ref == "s"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "100"}, "amount"),  # strict: a string is not an amount
        ({"amount": True}, "amount"),
        ({"amount": 100_000_000}, "amount"),  # over Stripe's 8 digits
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"buyer": {"id": "b", "email": "not-an-email"}}, "buyer.email"),
        ({"buyer": {"id": "bad id!", "email": "b@example.com"}}, "buyer.id"),
        ({"seller": {"id": "user-buyer-1", "email": "s@example.com"}}, "seller.id"),
        ({"webhookUrl": "http://partner.example.com/h"}, "webhookUrl"),
        ({"webhookUrl": "ftp://partner.example.com/h"}, "webhookUrl"),
        ({"webhookUrl": "https://user:pw@partner.example.com/h"}, "webhookUrl"),
        ({"webhookUrl": "not a url"}, "webhookUrl"),
        ({"webhookSecretRef": None}, "webhookSecretRef"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_create_bodies_name_the_field(change: dict[str, Any], field: str) -> None:
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(BadRequestError) as info:
        create(body)
    assert info.value.status == 400
    assert info.value.field == field, info.value.message


def test_missing_fields_are_named() -> None:
    body = dict(GOOD)
    del body["amount"]
    with pytest.raises(BadRequestError) as info:
        create(body)
    assert info.value.field == "amount"


def test_webhook_url_needs_its_secret_ref() -> None:
    body = {k: v for k, v in GOOD.items() if k != "webhookUrl"}
    with pytest.raises(BadRequestError) as info:
        create(body)
    assert info.value.field == "webhookUrl"


def test_http_localhost_webhooks_only_in_local_mode() -> None:
    body = {**GOOD, "webhookUrl": "http://127.0.0.1:8080/hook"}
    with pytest.raises(BadRequestError):
        create(body)
    assert create(body, allow_http_localhost=True).webhook_url == "http://127.0.0.1:8080/hook"
    with pytest.raises(BadRequestError):
        create({**body, "webhookUrl": "http://10.0.0.1/hook"}, allow_http_localhost=True)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_non_object_bodies_are_400_body(raw: bytes) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_body(raw, ReleaseRequest)
    assert info.value.field == "body"


def test_over_16_kib_is_413_and_exactly_16_kib_is_parsed() -> None:
    padding = "x" * MAX_BODY_BYTES
    with pytest.raises(PayloadTooLargeError) as info:
        parse_body(json.dumps({"escrowId": "esc_1", "pad": padding}).encode(), ReleaseRequest)
    assert info.value.status == 413
    body = json.dumps({"escrowId": "esc_1", "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (MAX_BODY_BYTES - len(body)) + b'"')
    assert len(body) == MAX_BODY_BYTES
    with pytest.raises(BadRequestError) as bad:  # parsed (then refused for its unknown field)
        parse_body(body, ReleaseRequest)
    assert bad.value.field == "pad"


@pytest.mark.parametrize("name", ["escrowId", "escrow_id", "transactionId", "transaction_id"])
def test_escrow_id_aliases(name: str) -> None:
    assert parse_body(json.dumps({name: "esc_1"}).encode(), ReleaseRequest).escrow_id == "esc_1"


def test_escrow_id_is_required_and_checked() -> None:
    with pytest.raises(BadRequestError) as info:
        parse_body(b"{}", ReleaseRequest)
    assert info.value.field == "escrowId"
    with pytest.raises(BadRequestError) as info:
        parse_body(b'{"escrowId": "../etc"}', ReleaseRequest)
    assert info.value.field == "escrowId"


def test_resolve_outcome_is_released_or_refunded() -> None:
    ok = parse_body(b'{"escrowId": "e", "outcome": "refunded"}', ResolveRequest)
    assert ok.outcome == "refunded"
    with pytest.raises(BadRequestError) as info:
        parse_body(b'{"escrowId": "e", "outcome": "split"}', ResolveRequest)
    assert info.value.field == "outcome"
