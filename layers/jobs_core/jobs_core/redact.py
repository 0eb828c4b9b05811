"""Email addresses never appear whole in logs or stored error texts.

``redact_email("user@example.com")`` is ``"u***@example.com"``: enough for an
operator to match a complaint to a log line, not enough to harvest addresses.
``redact_text`` does the same to every address inside free text, such as a
provider's error message (SES names the refused address in its errors).

Example::

    >>> redact_text("Email address not verified bob@example.com")
    'Email address not verified b***@example.com'
"""

from __future__ import annotations

import logging
import re

__all__ = ["EmailRedactingFilter", "redact_email", "redact_text"]

# RFC 5322's local-part characters; the look-behind keeps a match from starting inside a
# longer token (so "o'brien@x.io" is masked whole, not from "brien"). Deliberately broad:
# a false positive costs a few masked characters, a miss leaks an address.
_LOCAL = r"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"
_EMAIL = re.compile(
    rf"(?<![{_LOCAL}])(?P<local>[{_LOCAL}]+)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def redact_email(address: str) -> str:
    """``user@example.com`` -> ``u***@example.com``; a string without ``@`` -> ``***``."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def redact_text(text: str) -> str:
    """Every email address in ``text`` redacted as by ``redact_email``."""
    if "@" not in text:
        return text
    return _EMAIL.sub(lambda m: f"{m.group('local')[0]}***@{m.group('domain')}", text)


class EmailRedactingFilter(logging.Filter):
    """A logging filter that redacts addresses in the formatted message of each record.

    Our own log calls already pass redacted addresses; attach this filter to a
    handler to cover third-party loggers as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
