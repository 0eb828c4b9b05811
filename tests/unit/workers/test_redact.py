"""Addresses never whole in logs or error texts."""

from __future__ import annotations

import logging

import pytest
from jobs_core.redact import EmailRedactingFilter, redact_email, redact_text


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("user@example.com", "u***@example.com"),
        ("jane.doe+tag@mail.example.co.uk", "j***@mail.example.co.uk"),
        ("a@b.io", "a***@b.io"),
        ("not-an-address", "***"),
        ("@example.com", "***"),
    ],
)
def test_redact_email(address: str, shown: str) -> None:
    assert redact_email(address) == shown


def test_redact_text_covers_every_address() -> None:
    text = "Email address not verified bob@example.com; cc: Alice.Smith@corp.example.org."
    assert redact_text(text) == (
        "Email address not verified b***@example.com; cc: A***@corp.example.org."
    )
    assert redact_text("no address here") == "no address here"


def test_filter_redacts_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redact")
    flt = EmailRedactingFilter()
    logger.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, logger="tests.redact"):
            logger.info("sending to %s", "carol@example.com")
    finally:
        logger.removeFilter(flt)
    assert "carol@example.com" not in caplog.text
    assert "c***@example.com" in caplog.text
