"""AWS, locally: an in-process moto server and the resources the functions expect in it.

DynamoDB gets the tables of ``template.yaml`` (their key schemas and TTLs read from the
template), Secrets Manager the secrets the functions read (Stripe key and webhook
secret, the processor's operator token, a demo partner's webhook secret), SES a
verified sender; CloudWatch receives the EMF metrics (``emf.CloudWatchForwarder``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from .config import DEMO_PARTNER_REF, STRIPE_API_KEY
from .redis_process import free_port
from .template import REGION, TableSpec


def stack_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """Secret name -> value for every secret the functions read, fresh for each start."""
    prefix = environ.get("WEBHOOK_SECRET_PREFIX", "")
    return {
        environ["STRIPE_API_KEY_REF"]: STRIPE_API_KEY,
        environ["STRIPE_WEBHOOK_SECRET_REF"]: "whsec_" + secrets.token_hex(24),
        environ["JOB_PROCESSOR_TOKEN_PARAM"]: secrets.token_urlsafe(32),
        prefix + DEMO_PARTNER_REF: "whsec_" + base64.b64encode(os.urandom(32)).decode(),
    }


class LocalAws:
    """``start()`` the moto server; ``client(service)`` is a boto3 client pointed at it."""

    def __init__(self) -> None:
        self.server: Any = None
        self.endpoint = ""

    def start(self) -> None:
        self.server = _serial_dynamodb_server(free_port())
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def client(self, service: str) -> Any:
        import boto3

        factory: Any = boto3.client  # one call for any service name
        return factory(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's dummy)
        )

    def create_resources(
        self,
        tables: Mapping[str, TableSpec],
        table_names: Mapping[str, str],
        secret_values: Mapping[str, str],
    ) -> None:
        """The tables (``table_names``: logical id -> name), the secrets, the SES sender."""
        dynamodb = self.client("dynamodb")
        for logical, spec in tables.items():
            name = table_names[logical]
            dynamodb.create_table(TableName=name, **spec.create_args)
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": spec.ttl_attribute, "Enabled": True},
                )
        manager = self.client("secretsmanager")
        for name, value in secret_values.items():
            manager.create_secret(Name=name, SecretString=value)
        with contextlib.suppress(Exception):  # only for EMAIL_PROVIDER=ses
            ses = self.client("ses")
            ses.verify_domain_identity(Domain="escrow.local")
            ses.verify_email_identity(EmailAddress="no-reply@escrow.local")


class SerialDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, as the tests' moto fixture does.

    moto runs a request's condition checks and writes as plain Python, and a failed
    transaction restores a copy of the whole table it took before: concurrent writes in
    between are wiped, so two racing requests could both move money. DynamoDB itself
    never interleaves them; serialising moto's DynamoDB requests restores that. Other
    services (Secrets Manager, SES, Lambda, CloudWatch) stay concurrent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer, inside


def _serial_dynamodb_server(port: int) -> Any:
    """moto's threaded server with ``SerialDynamoDB`` around its application."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = SerialDynamoDB(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=port, verbose=False)
