"""Bodies an attacker (or a confused client) sends: each is refused with a 4xx naming the
field or ``body``, and nothing is written (table, Stripe, queue)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from escrow.service import EscrowService
from jobs_core import JobQueue
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    call,
    funded_escrow,
    invoke,
    job_counts,
    load_event,
)
from tests.integration.escrow_api.test_routes import table_items
from tests.support.resolvers import PARTNER_DNS

CREATE_BODY = load_event("create")["body"]


def assert_nothing_written(stripe_api: StripeServer, queue: JobQueue) -> None:
    assert table_items() == []
    assert stripe_api.requests == []
    assert job_counts(queue) == {}


def with_amount(literal: str) -> str:
    return CREATE_BODY.replace('"amount": 10000', f'"amount": {literal}')


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_amount("9" * 5000), "amount"),  # over Python's int-string limit
        (with_amount("-" + "9" * 5000), "amount"),
        (with_amount("1" + "0" * 40), "amount"),
        (with_amount("1e999"), "amount"),  # float('inf')
        (with_amount("0." + "1" * 5000), "amount"),
        (with_amount("NaN"), "body"),
        ('{"a":' * 2500 + "1" + "}" * 2500, "body"),  # RecursionError in json.loads
        ("[" * 5000 + "]" * 5000, "body"),
        (CREATE_BODY.replace('"name": "Bea Buyer"', '"name": ' + "[" * 40 + "]" * 40), "body"),
        (CREATE_BODY[:-1] + ', "extra": {"deep": [' + "9" * 5000 + "]}}", "extra.deep.0"),
    ],
    ids=[
        "digits",
        "negative",
        "41-digits",
        "inf",
        "long-float",
        "nan",
        "deep-object",
        "deep-array",
        "deep-field",
        "nested-number",
    ],
)
def test_hostile_bodies_are_400_naming_the_field(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue, body: str, field: str
) -> None:
    reply = call("create", body=body)
    assert reply.status == 400, reply.body
    assert reply.error["field"] == field
    assert reply.error["code"] == "invalid_request"
    assert_nothing_written(stripe_api, queue)


def test_brackets_inside_strings_are_not_nesting(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    body = json.loads(CREATE_BODY)
    body["description"] = '[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{\\"'
    reply = call("create", body=body)
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", CREATE_BODY),
        ("text/plain;charset=UTF-8", CREATE_BODY),  # what a browser form or fetch sends
        ("application/x-www-form-urlencoded", CREATE_BODY),
        ("application/xml", CREATE_BODY),
        ("multipart/form-data; boundary=x", CREATE_BODY),
        ("application/json; charset=latin-1", CREATE_BODY),
        ("application/jsonp", CREATE_BODY),
        (None, CREATE_BODY),
    ],
)
def test_bodies_that_are_not_json_are_415_and_write_nothing(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    content_type: str | None,
    body: str,
) -> None:
    reply = call("create", body=body, headers={"content-type": content_type})
    assert reply.status == 415, reply.body
    assert reply.error["code"] == "unsupported_media_type"
    assert reply.error["field"] == "Content-Type"
    assert_nothing_written(stripe_api, queue)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_with_a_utf8_charset_is_accepted(
    service: EscrowService, stripe_api: StripeServer, content_type: str
) -> None:
    reply = call("create", body=CREATE_BODY, headers={"content-type": content_type})
    assert reply.status == 201, reply.body


def test_a_release_sent_as_a_form_moves_no_money(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    job_counts(queue)  # the funding's jobs
    before = len(stripe_api.requests)
    event = load_event(
        "release",
        escrow_id=escrow_id,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    reply = invoke(event)
    assert reply.status == 415
    assert len(stripe_api.requests) == before
    assert job_counts(queue) == {}
    assert call("get_escrow_admin", escrow_id=escrow_id).body["escrow"]["state"] == "funded"


def _with_claims(event: dict[str, Any], **claims: Any) -> dict[str, Any]:
    jwt_claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    jwt_claims.pop("cognito:groups", None)
    jwt_claims.update(claims)
    return event


@pytest.mark.parametrize("claim", ["roles", "groups", "custom:roles"])
def test_admin_is_granted_only_by_the_configured_claim(
    service: EscrowService, stripe_api: StripeServer, claim: str
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    stranger_admin = _with_claims(
        load_event("get_escrow_admin", escrow_id=escrow_id), **{claim: "[admin]"}
    )
    assert invoke(stranger_admin).status == 404  # not an admin: a stranger to this escrow
    real_admin = load_event("get_escrow_admin", escrow_id=escrow_id)
    assert invoke(real_admin).status == 200


def test_the_roles_claim_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], stripe_api: StripeServer
) -> None:
    from escrow.api import get_service

    monkeypatch.setenv("ESCROW_ROLES_CLAIM", "https://escrow.example.com/roles")
    get_service.cache_clear()
    get_service().webhook_resolver = PARTNER_DNS
    escrow_id, _ = funded_escrow(stripe_api)
    event = _with_claims(
        load_event("get_escrow_admin", escrow_id=escrow_id),
        **{"https://escrow.example.com/roles": ["admin"]},
    )
    assert invoke(event).status == 200
    assert invoke(load_event("get_escrow_admin", escrow_id=escrow_id)).status == 404
