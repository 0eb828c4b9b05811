"""Secret rotation (issue 14): a secret value may hold several secrets; every delivery is
signed with each, and the reference ``standardwebhooks`` verifier accepts it with the old
secret and with the new one. A malformed secret is a permanent error naming no secret."""

from __future__ import annotations

import base64
import secrets

import pytest
from jobs_core import PermanentJobError
from jobs_core.workers.webhook import WebhookSender, parse_secrets
from standardwebhooks import Webhook

from tests.support.webhook_receiver import WebhookReceiver

BODY = b'{"type":"escrow.status_changed","data":{"escrow_id":"esc-1","version":3}}'


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.mark.parametrize("separator", [" ", "\n", ",", ", "])
def test_each_delivery_verifies_with_the_old_and_the_new_secret(separator: str) -> None:
    old, new = new_secret(), new_secret()
    sender = WebhookSender(allow_local=True)
    for partner_secret in (old, new):  # a partner on the old secret, then one on the new
        with WebhookReceiver(secret=partner_secret) as receiver:
            sender.deliver(
                url=receiver.url, secret=old + separator + new, message_id="msg_1", body=BODY
            )
            [delivery] = receiver.accepted
            assert delivery.verified
            assert delivery.signature is not None
            signatures = delivery.signature.split(" ")
            assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
            for key in (old, new):  # the reference verifier, with either secret
                Webhook(key).verify(delivery.body, delivery.headers)
    sender.close()


def test_a_third_party_secret_does_not_verify() -> None:
    old, new = new_secret(), new_secret()
    with WebhookReceiver(secret=old) as receiver:
        WebhookSender(allow_local=True).deliver(
            url=receiver.url, secret=f"{old} {new}", message_id="msg_1", body=BODY
        )
        [delivery] = receiver.accepted
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(delivery.body, delivery.headers)


@pytest.mark.parametrize(
    "value", ["", "   ", "whsec_" + "A" * 44 + " not-a-secret", "whsec_%%%", "A" * 44]
)
def test_a_malformed_secret_is_permanent_and_never_echoed(value: str) -> None:
    with WebhookReceiver() as receiver:
        with pytest.raises(PermanentJobError) as info:
            WebhookSender(allow_local=True).deliver(
                url=receiver.url, secret=value, message_id="msg_1", body=BODY
            )
        assert receiver.deliveries == []  # nothing was sent
    assert "secret" in str(info.value)
    for part in value.split():
        assert part not in str(info.value)


def test_parse_secrets_keeps_the_order() -> None:
    a, b, c = new_secret(), new_secret(), new_secret()
    assert parse_secrets(f"{a}\n{b}, {c}") == [a, b, c]
