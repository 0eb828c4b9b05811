"""The layer's Powertools logger, with every email address redacted.

One ``Logger`` serves the whole layer and the functions that use it (they import
``logger`` rather than building their own, so the redacting formatter is the one
registered). The formatter redacts the *finished* JSON line, which covers the
message, ``extra`` fields, appended keys and exception text alike:
``jane.doe@example.com`` is logged as ``j***@example.com``.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (Powertools reads it).

    from jobs_core.logging import logger
    logger.info("sent", extra={"to": "jane@example.com"})   # ... "to": "j***@example.com"
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from .redact import redact_text

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.types import LogRecord


def redact_emails(text: str) -> str:
    """Mask every email-shaped substring, keeping its first character and its domain.

    >>> redact_emails("to jane.doe+x@example.co.uk, cc bob@b.io")
    'to j***@example.co.uk, cc b***@b.io'
    """
    return redact_text(text)


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter whose output never holds a whole email address."""

    def serialize(self, log: LogRecord) -> str:
        return redact_emails(super().serialize(log))


logger = Logger(logger_formatter=RedactingFormatter())

__all__ = ["RedactingFormatter", "logger", "redact_emails", "route_layer_loggers"]


def route_layer_loggers(prefix: str = "jobs_core") -> None:
    """Send the layer's standard loggers (``logging.getLogger("jobs_core.…")``) through the
    Powertools handler, so their lines are JSON, redacted, and carry the job keys."""
    std = logging.getLogger(prefix)
    handler = logger.registered_handler
    if handler not in std.handlers:
        std.addHandler(handler)
    std.setLevel(logger.log_level)
    std.propagate = False
