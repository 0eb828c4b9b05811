"""Every email has a subject, a plain text and an HTML part; user strings are escaped."""

from __future__ import annotations

import pytest
from jobs_core.payloads import (
    DisputeEmailPayload,
    DisputeResolvedPayload,
    PaymentConfirmedEmailPayload,
    RefundEmailPayload,
    ReleaseEmailPayload,
)
from jobs_core.workers import email_templates as t
from jobs_core.workers.email_templates import Party, RenderedEmail

EVIL = '<script>alert("x")</script> & co'


def _all() -> list[tuple[str, RenderedEmail]]:
    common = {"transaction_id": "esc-1", "amount": 10000, "currency": "USD"}
    dispute = {**common, "buyer_email": "b@example.com", "seller_email": "s@example.com"}
    person = {"recipient_name": EVIL}
    out = [
        (
            "release",
            t.release_email(ReleaseEmailPayload(**common, **person, recipient_email="s@x.io")),
        ),
        (
            "refund",
            t.refund_email(
                RefundEmailPayload(**common, **person, recipient_email="b@x.io", reason=EVIL)
            ),
        ),
        (
            "confirmed",
            t.payment_confirmed_email(
                PaymentConfirmedEmailPayload(**common, **person, recipient_email="b@x.io")
            ),
        ),
    ]
    for party in Party:
        out.append(
            (
                f"dispute-{party}",
                t.dispute_opened_email(DisputeEmailPayload(**dispute, reason=EVIL), party),
            )
        )
        out.append(
            (
                f"resolved-{party}",
                t.dispute_resolved_email(
                    DisputeResolvedPayload(**dispute, outcome="released", note=EVIL), party
                ),
            )
        )
    return out


@pytest.mark.parametrize(("name", "rendered"), _all(), ids=[n for n, _ in _all()])
def test_parts_amount_and_escaping(name: str, rendered: RenderedEmail) -> None:
    assert rendered.subject and "\n" not in rendered.subject
    assert "esc-1" in rendered.subject
    assert "$100.00" in rendered.text
    assert "$100.00" in rendered.html
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in rendered.html
    assert EVIL in rendered.text  # plain text is not HTML: shown as typed


def test_party_specific_wording() -> None:
    payload = DisputeResolvedPayload(
        transaction_id="esc-2", amount=500, currency="JPY", outcome="refunded",
        buyer_email="b@example.com", seller_email="s@example.com",
    )  # fmt: skip
    buyer = t.dispute_resolved_email(payload, Party.BUYER)
    seller = t.dispute_resolved_email(payload, Party.SELLER)
    assert "you are the buyer" in buyer.text
    assert "you are the seller" in seller.text
    assert "¥500 is refunded to the buyer" in buyer.text


def test_optional_parts_are_left_out() -> None:
    rendered = t.refund_email(
        RefundEmailPayload(transaction_id="esc-3", amount=1, recipient_email="b@example.com")
    )
    assert "Reason:" not in rendered.text
    assert rendered.text.startswith("Hello,")


@pytest.mark.parametrize("kind", ["authorization_expiring", "authorization_expired",
                                  "chargeback_opened", "chargeback_closed"])  # fmt: skip
def test_payment_notices_name_the_escrow_amount_and_news(kind: str) -> None:
    from jobs_core.payloads import PaymentNoticePayload

    p = PaymentNoticePayload.model_validate(
        {"transactionId": "esc-9", "amount": 12345, "currency": "EUR", "notice": kind,
         "recipients": [{"role": "admin", "email": "ops@example.com"}],
         "deadline": "2026-12-08T09:00:00Z", "outcome": "lost"}
    )  # fmt: skip
    rendered = t.payment_notice_email(p, "admin")
    assert "esc-9" in rendered.subject
    assert "€123.45" in rendered.text and "€123.45" in rendered.html
    if kind == "authorization_expiring":
        assert "2026-12-08 09:00 UTC" in rendered.subject
    if kind == "chargeback_closed":
        assert "lost" in rendered.subject
