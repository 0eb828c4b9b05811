"""A partner's webhook endpoint, over real HTTP(S), that verifies every delivery.

Each POST is verified with the ``standardwebhooks`` verifier and the
receiver's secret (a bad or missing signature is answered 401) and recorded as
a ``Delivery``. Like a well-behaved partner it dedupes on ``webhook-id``: a
verified delivery whose id was already accepted is answered 200 and marked
``duplicate``; ``accepted`` lists the deliveries that took effect.

Behaviour of the next requests can be scripted:

* ``respond_next(n, status, headers=None, body=b"")``: answer ``status``
  (e.g. 500, 429 with ``{"Retry-After": "7"}``, 408, 404, 301);
* ``sleep_next(n, seconds)``: wait before answering 200;
* ``drip_next(n, interval_s)``: send the response head one byte every
  ``interval_s`` (each read is quick; only a total deadline stops the client);
* ``big_body_next(n, size)``: answer 200 with a body of ``size`` bytes, written
  until the client stops reading (``bytes_sent`` tells how far it got).

With ``tls=server_context`` it serves HTTPS and records the SNI names clients
sent (``sni_names``); ``make_tls_contexts(hostname)`` builds a throwaway CA, a
certificate for ``hostname`` and the matching server and client contexts.

Example::

    with WebhookReceiver() as partner:
        sender.deliver(url=partner.url, secret=partner.secret, message_id="msg_1", body=b"{}")
        assert partner.accepted[0].webhook_id == "msg_1"
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from local_stack.lifecycle import StartStopContext
from standardwebhooks import Webhook

__all__ = ["Delivery", "WebhookReceiver", "make_tls_contexts"]


@dataclass(frozen=True)
class Delivery:
    """One POST as the partner saw it."""

    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    headers: dict[str, str]
    body: bytes
    payload: Any
    verified: bool
    status: int  # what the receiver answered
    duplicate: bool = False
    error: str | None = None
    path: str = "/"

    @property
    def host(self) -> str | None:
        return self.headers.get("host")


@dataclass
class _Action:
    kind: str  # "status" | "sleep" | "drip" | "big"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    size: int = 0


class WebhookReceiver(StartStopContext):
    """See the module docstring. Thread-safe; use as a context manager."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self._verifier = Webhook(self.secret)
        self._tls = tls
        self._host = host
        self._lock = threading.Lock()
        self._actions: deque[_Action] = deque()
        self._deliveries: list[Delivery] = []
        self._accepted_ids: set[str] = set()
        self.sni_names: list[str | None] = []
        self.bytes_sent = 0
        self._server: ThreadingHTTPServer | None = None
        if tls is not None:
            tls.sni_callback = self._on_sni  # type: ignore[assignment]

    def _on_sni(self, _sock: Any, name: str | None, _ctx: Any) -> None:
        with self._lock:
            self.sni_names.append(name)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        server = ThreadingHTTPServer((self._host, 0), self._handler_class())
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "receiver not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}/hooks"

    # --- scripting and inspection ---------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._actions.clear()
            self._deliveries.clear()
            self._accepted_ids.clear()
            self.sni_names.clear()
            self.bytes_sent = 0

    def respond_next(
        self, n: int, status: int, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        with self._lock:
            self._actions.extend(
                _Action("status", status, dict(headers or {}), body) for _ in range(n)
            )

    def sleep_next(self, n: int, seconds: float) -> None:
        with self._lock:
            self._actions.extend(_Action("sleep", seconds=seconds) for _ in range(n))

    def drip_next(self, n: int, interval_s: float) -> None:
        with self._lock:
            self._actions.extend(_Action("drip", seconds=interval_s) for _ in range(n))

    def big_body_next(self, n: int, size: int) -> None:
        with self._lock:
            self._actions.extend(_Action("big", size=size) for _ in range(n))

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def accepted(self) -> list[Delivery]:
        """Verified, answered 2xx, and not a duplicate: the deliveries that took effect."""
        return [
            d for d in self.deliveries if d.verified and 200 <= d.status < 300 and not d.duplicate
        ]

    # --- HTTP -----------------------------------------------------------------------

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Delivery, _Action]:
        try:
            payload = self._verifier.verify(body, headers)
            verified, error = True, None
        except Exception as exc:
            payload, verified, error = None, False, f"{type(exc).__name__}: {exc}"
        with self._lock:
            action = self._actions.popleft() if self._actions else _Action("status", 200)
            status = action.status if action.kind == "status" else 200
            if not verified:
                status = 401
            webhook_id = headers.get("webhook-id")
            duplicate = verified and 200 <= status < 300 and webhook_id in self._accepted_ids
            if verified and 200 <= status < 300 and webhook_id:
                self._accepted_ids.add(webhook_id)
            delivery = Delivery(
                webhook_id=webhook_id,
                timestamp=headers.get("webhook-timestamp"),
                signature=headers.get("webhook-signature"),
                headers=headers,
                body=body,
                payload=payload,
                verified=verified,
                status=status,
                duplicate=duplicate,
                error=error,
                path=path,
            )
            self._deliveries.append(delivery)
        if not verified:
            action = _Action("status", 401, body=b'{"error":"invalid signature"}')
        return delivery, action

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                _, action = receiver._receive(self.path, headers, body)
                with contextlib.suppress(OSError, ssl.SSLError):
                    self._answer(action)
                self.close_connection = True

            def _answer(self, action: _Action) -> None:
                if action.kind == "sleep":
                    time.sleep(action.seconds)
                if action.kind == "drip":
                    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
                    for i in range(len(head)):
                        self.wfile.write(head[i : i + 1])
                        self.wfile.flush()
                        time.sleep(action.seconds)
                    return
                if action.kind == "big":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(action.size))
                    self.end_headers()
                    chunk = b"x" * 65_536
                    sent = 0
                    while sent < action.size:
                        piece = chunk[: action.size - sent]
                        self.wfile.write(piece)
                        sent += len(piece)
                        with receiver._lock:
                            receiver.bytes_sent = sent
                    return
                self.send_response(action.status)
                for name, value in action.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(action.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(action.body)

        return Handler


def make_tls_contexts(hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server, client)`` contexts: a throwaway CA, and a certificate for ``hostname``.

    The client context trusts only that CA and checks host names, as a real client does.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "escrow-jobs test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="webhook-tls-"))
    cert_path, key_path, ca_path = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(ca_path))
    return server, client
