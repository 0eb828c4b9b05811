"""Email delivery: Amazon SES (``sesv2``), Resend over HTTP, or a local mailbox directory.

``send_email_once`` sends one message through the ledger of ``effects``, so a
job delivered twice sends each message once (see that module for the order
and its remaining window). Resend additionally receives the effect id as its
``Idempotency-Key``. Addresses appear in logs and error texts only redacted.

Provider errors are classified once, here: throttling, 5xx and network errors
are ``RetryableJobError``; a rejected message, an unverified sender or a bad
request are ``PermanentJobError``.

Example::

    provider = MailboxEmailProvider(".local/mailbox")
    send_email_once(provider=provider, ledger=MemoryEffectLedger(), clock=SystemClock(),
                    effect_id="job-1/email/recipient",
                    message=OutgoingEmail(sender="Escrow <no-reply@example.com>",
                                          to="buyer@example.com", subject="Hi",
                                          text="Hi", html="<p>Hi</p>"))
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from ..clock import Clock
from ..errors import PermanentJobError, RetryableJobError
from ..redact import redact_email, redact_text
from .effects import EffectLedger, run_once
from .httputil import parse_retry_after

__all__ = [
    "EmailProvider",
    "MailboxEmailProvider",
    "OutgoingEmail",
    "ResendEmailProvider",
    "SesEmailProvider",
    "send_email_once",
    "ses_error",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    sender: str
    to: str
    subject: str
    text: str
    html: str

    def __repr__(self) -> str:  # dataclass repr would print the address whole
        return f"OutgoingEmail(to={redact_email(self.to)!r}, subject={self.subject!r})"


class EmailProvider(Protocol):
    name: str

    def send(self, message: OutgoingEmail, *, idempotency_key: str) -> str:
        """Send; return the provider's message id. Raise Retryable/PermanentJobError."""
        ...


def send_email_once(
    *,
    provider: EmailProvider,
    ledger: EffectLedger,
    clock: Clock,
    effect_id: str,
    message: OutgoingEmail,
) -> bool:
    """Send ``message`` unless the ledger records ``effect_id`` as sent; True when sent now."""

    def send() -> None:
        message_id = provider.send(message, idempotency_key=effect_id)
        log.info(
            "email %s sent to %s via %s (message id %s)",
            effect_id, redact_email(message.to), provider.name, message_id,
        )  # fmt: skip

    return run_once(ledger, effect_id, send, clock=clock)


# --- Amazon SES -------------------------------------------------------------------------

_SES_RETRYABLE = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
# The account cannot send for now; an operator must act, so retry slowly until the job dies.
_SES_PAUSED = frozenset({"SendingPausedException", "AccountSuspendedException"})


def ses_error(exc: Exception) -> RetryableJobError | PermanentJobError:
    """Map a boto3 SES error to the handler error it means (message redacted)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):  # EndpointConnectionError, timeouts, ...
        return RetryableJobError(f"SES unreachable: {type(exc).__name__}")
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    detail = redact_text(str(error.get("Message", "")))[:300]
    request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    text = f"SES {code or status}: {detail} (request id {request_id})"
    if code in _SES_PAUSED:
        return RetryableJobError(text, delay_s=300)
    if code in _SES_RETRYABLE or status >= 500:
        return RetryableJobError(text)
    return PermanentJobError(text)


class SesEmailProvider:
    """Amazon SES v2 ``SendEmail`` with a simple (subject, text, HTML) content.

    ``client`` is a boto3 ``sesv2`` client or a factory of one (built on first use).
    IAM: ``ses:SendEmail`` on the sending identity.
    """

    name = "ses"

    def __init__(
        self, client: Any | Callable[[], Any], *, configuration_set: str | None = None
    ) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, message: OutgoingEmail, *, idempotency_key: str) -> str:
        client = self._client() if callable(self._client) else self._client
        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": message.text, "Charset": "UTF-8"},
                        "Html": {"Data": message.html, "Charset": "UTF-8"},
                    },
                }
            },
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = client.send_email(**request)
        except Exception as exc:
            raise ses_error(exc) from None  # the SDK's text may hold the address
        return str(response.get("MessageId", ""))


# --- Resend -----------------------------------------------------------------------------

DEFAULT_RESEND_API_URL = "https://api.resend.com"


class ResendEmailProvider:
    """Resend's ``POST /emails`` with an ``Idempotency-Key`` (the effect id).

    ``api_key`` is a callable so the key is looked up (and cached by the resolver)
    on use, not at construction.
    """

    name = "resend"

    def __init__(
        self,
        http: httpx.Client | Callable[[], httpx.Client],
        *,
        api_key: Callable[[], str],
        api_url: str = DEFAULT_RESEND_API_URL,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._url = api_url.rstrip("/") + "/emails"

    def send(self, message: OutgoingEmail, *, idempotency_key: str) -> str:
        http = self._http if isinstance(self._http, httpx.Client) else self._http()
        try:
            response = http.post(
                self._url,
                json={
                    "from": message.sender,
                    "to": [message.to],
                    "subject": message.subject,
                    "text": message.text,
                    "html": message.html,
                },
                headers={
                    "Authorization": f"Bearer {self._api_key()}",
                    "Idempotency-Key": idempotency_key[:256],
                },
            )
        except httpx.HTTPError as exc:
            raise RetryableJobError(f"Resend unreachable: {type(exc).__name__}") from None
        if response.is_success:
            return str(response.json().get("id", ""))
        raise _resend_error(response)


def _resend_error(response: httpx.Response) -> RetryableJobError | PermanentJobError:
    try:
        body = response.json()
        name, detail = str(body.get("name", "")), str(body.get("message", ""))
    except ValueError:
        name, detail = "", response.text[:200]
    text = f"Resend HTTP {response.status_code} {name}: {redact_text(detail)[:300]}"
    status = response.status_code
    if status == 429 or status >= 500:
        return RetryableJobError(
            text, delay_s=parse_retry_after(response.headers.get("retry-after"))
        )
    if status == 409 and name == "concurrent_idempotent_requests":
        return RetryableJobError(text, delay_s=2.0)
    return PermanentJobError(text)


# --- Local mailbox ----------------------------------------------------------------------


class MailboxEmailProvider:
    """Writes each message as an ``.eml`` file (text + HTML alternative) into a directory.

    Open the files with any mail client, or read them in tests.
    """

    name = "mailbox"

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def send(self, message: OutgoingEmail, *, idempotency_key: str) -> str:
        mail = EmailMessage()
        mail["From"] = message.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain="escrow.local")
        mail["X-Effect-Id"] = idempotency_key
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"{stamp}-{quote(idempotency_key, safe='')}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, path)
        log.info("email written to %s", path)
        return path.name
