"""Subject, plain text and HTML of every email the workers send.

Templates are plain functions of the typed payload: typed, testable, no
template engine in the layer. Every string a user supplied (names, reasons,
notes) is HTML-escaped in the HTML part; amounts go through ``money.format_money``.

Example::

    rendered = release_email(ReleaseEmailPayload(transaction_id="esc-1", amount=10000,
                                                  recipient_email="s@example.com"))
    rendered.subject  # 'Funds released for escrow esc-1'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

from ..payloads import (
    DisputeEmailPayload,
    DisputeOutcome,
    DisputeResolvedPayload,
    NoticeKind,
    PaymentConfirmedEmailPayload,
    PaymentNoticePayload,
    RefundEmailPayload,
    ReleaseEmailPayload,
)
from .money import format_money

__all__ = [
    "Party",
    "RenderedEmail",
    "dispute_opened_email",
    "dispute_resolved_email",
    "payment_confirmed_email",
    "payment_notice_email",
    "refund_email",
    "release_email",
]

PRODUCT = "Escrow"


class Party(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _greeting(name: str | None) -> tuple[str, str]:
    if name and name.strip():
        return f"Hello {name.strip()},", f"Hello {escape(name.strip())},"
    return "Hello,", "Hello,"


def _html(title: str, paragraphs: list[str]) -> str:
    """Wrap already-escaped paragraphs in a minimal, client-safe HTML document."""
    body = "\n".join(f'<p style="margin:0 0 16px">{p}</p>' for p in paragraphs)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n"
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;color:#1a1a1a">\n'
        f"{body}\n"
        f'<p style="margin:24px 0 0;color:#666;font-size:12px">{PRODUCT}: this is an automated '
        "message about your transaction.</p>\n"
        "</body></html>\n"
    )


def _text(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs) + f"\n\n--\n{PRODUCT}: this is an automated message.\n"


def _render(subject: str, text_parts: list[str], html_parts: list[str]) -> RenderedEmail:
    return RenderedEmail(subject=subject, text=_text(text_parts), html=_html(subject, html_parts))


def release_email(p: ReleaseEmailPayload) -> RenderedEmail:
    """To the seller: the escrowed funds were released to them."""
    amount = format_money(p.amount, p.currency)
    hello_t, hello_h = _greeting(p.recipient_name)
    tid = p.transaction_id
    return _render(
        f"Funds released for escrow {tid}",
        [hello_t, f"The payment of {amount} held in escrow {tid} has been released to you."],
        [
            hello_h,
            f"The payment of <strong>{escape(amount)}</strong> held in escrow "
            f"<strong>{escape(tid)}</strong> has been released to you.",
        ],
    )


def refund_email(p: RefundEmailPayload) -> RenderedEmail:
    """To the buyer: their payment was refunded (with the reason when there is one)."""
    amount = format_money(p.amount, p.currency)
    hello_t, hello_h = _greeting(p.recipient_name)
    tid = p.transaction_id
    text = [hello_t, f"Your payment of {amount} for escrow {tid} has been refunded."]
    html = [
        hello_h,
        f"Your payment of <strong>{escape(amount)}</strong> for escrow "
        f"<strong>{escape(tid)}</strong> has been refunded.",
    ]
    if p.reason:
        text.append(f"Reason: {p.reason}")
        html.append(f"Reason: {escape(p.reason)}")
    text.append("Refunds usually reach your account within 5 to 10 business days.")
    html.append("Refunds usually reach your account within 5 to 10 business days.")
    return _render(f"Your payment for escrow {tid} was refunded", text, html)


def payment_confirmed_email(p: PaymentConfirmedEmailPayload) -> RenderedEmail:
    """To the buyer: the payment is held in escrow until the deal completes."""
    amount = format_money(p.amount, p.currency)
    hello_t, hello_h = _greeting(p.recipient_name)
    tid = p.transaction_id
    return _render(
        f"Payment received: {amount} held in escrow {tid}",
        [
            hello_t,
            f"We received your payment of {amount}. It is held safely in escrow {tid} "
            "and will be released to the seller once the transaction completes.",
        ],
        [
            hello_h,
            f"We received your payment of <strong>{escape(amount)}</strong>. It is held safely "
            f"in escrow <strong>{escape(tid)}</strong> and will be released to the seller once "
            "the transaction completes.",
        ],
    )


def dispute_opened_email(p: DisputeEmailPayload, party: Party) -> RenderedEmail:
    """To each party: a dispute was opened; the funds stay held until it is resolved."""
    amount = format_money(p.amount, p.currency)
    tid = p.transaction_id
    role = "buyer" if party is Party.BUYER else "seller"
    text = [
        "Hello,",
        f"A dispute has been opened on escrow {tid} ({amount}), in which you are the {role}.",
        "The funds stay in escrow until the dispute is resolved. We will contact you if we "
        "need more information.",
    ]
    html = [
        "Hello,",
        f"A dispute has been opened on escrow <strong>{escape(tid)}</strong> "
        f"(<strong>{escape(amount)}</strong>), in which you are the {role}.",
        "The funds stay in escrow until the dispute is resolved. We will contact you if we "
        "need more information.",
    ]
    if p.reason:
        text.insert(2, f"Reason given: {p.reason}")
        html.insert(2, f"Reason given: {escape(p.reason)}")
    return _render(f"A dispute was opened on escrow {tid}", text, html)


def dispute_resolved_email(p: DisputeResolvedPayload, party: Party) -> RenderedEmail:
    """To each party: how the dispute ended and where the money goes."""
    amount = format_money(p.amount, p.currency)
    tid = p.transaction_id
    if p.outcome is DisputeOutcome.RELEASED:
        outcome = f"it was resolved in favour of the seller: {amount} is released to the seller"
    else:
        outcome = f"it was resolved in favour of the buyer: {amount} is refunded to the buyer"
    role = "buyer" if party is Party.BUYER else "seller"
    text = [
        "Hello,",
        f"The dispute on escrow {tid}, in which you are the {role}, is closed: {outcome}.",
    ]
    html = [
        "Hello,",
        f"The dispute on escrow <strong>{escape(tid)}</strong>, in which you are the {role}, "
        f"is closed: {escape(outcome)}.",
    ]
    if p.note:
        text.append(f"Note from our team: {p.note}")
        html.append(f"Note from our team: {escape(p.note)}")
    return _render(f"The dispute on escrow {tid} is resolved", text, html)


def payment_notice_email(p: PaymentNoticePayload, role: str) -> RenderedEmail:
    """To a party or the admin: what Stripe did (or will do) to the escrow's payment."""
    amount = format_money(p.amount, p.currency)
    tid = p.transaction_id
    deadline = p.deadline.strftime("%Y-%m-%d %H:%M UTC") if p.deadline else "soon"
    subjects_and_lines: dict[NoticeKind, tuple[str, str]] = {
        NoticeKind.AUTHORIZATION_EXPIRING: (
            f"The payment held for escrow {tid} expires {deadline}",
            f"The card authorisation of {amount} held for escrow {tid} expires {deadline}. "
            "Unless the escrow is released before then, the hold lapses and the buyer's "
            "card is no longer charged.",
        ),
        NoticeKind.AUTHORIZATION_EXPIRED: (
            f"The payment held for escrow {tid} has expired",
            f"The card authorisation of {amount} held for escrow {tid} was cancelled by the "
            "card network or Stripe before it was captured. No money was taken from the "
            "buyer, and the escrow is closed as expired.",
        ),
        NoticeKind.CHARGEBACK_OPENED: (
            f"Chargeback opened on escrow {tid}",
            f"The cardholder disputed the charge of {amount} for escrow {tid} with their "
            "bank. The escrow is frozen until the chargeback is settled; evidence is due "
            "in Stripe's dashboard.",
        ),
        NoticeKind.CHARGEBACK_CLOSED: (
            f"Chargeback on escrow {tid} closed: {p.outcome or 'closed'}",
            f"The chargeback on escrow {tid} ({amount}) is closed; the outcome is "
            f"{p.outcome or 'closed'}.",
        ),
    }
    subject, line = subjects_and_lines[p.notice]
    hello = "Hello," if role != "admin" else "Hello team,"
    return _render(subject, [hello, line], [hello, escape(line)])
