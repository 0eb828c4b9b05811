"""End-to-end: the local stack (``python -m local_stack``, what ``make dev``
runs) started in a subprocess on free ports, driven over HTTP.

The stack starts its own redis-server child (never a Redis the tests did not start), its
own moto server and local Stripe server; everything it writes goes to a temporary state
directory. ``Stack`` knows where everything is (from the stack's ``stack.json``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest

from tests.support.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0  # a liveness bound (a cold moto import is slow), not a benchmark
STOP_TIMEOUT_S = 60.0
EVENTUALLY_S = 45.0

T = TypeVar("T")

# The stack must not inherit a Redis, AWS account or Stripe key from the developer's shell.
_INHERITED_PREFIXES = ("REDIS_URL", "UPSTASH_", "KV_REST_", "JOBS_", "AWS_", "STRIPE_",
                       "ESCROW_", "POWERTOOLS_", "EMAIL_", "MAILBOX_")  # fmt: skip


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path
    info: dict[str, Any]

    @property
    def api(self) -> str:
        return str(self.info["apiUrl"])

    def token(self, role: str) -> str:
        return str(self.info["users"][role]["token"])

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def aws(self, service: str) -> Any:
        factory: Any = boto3.client
        return factory(
            service,
            endpoint_url=self.info["awsEndpoint"],
            region_name=self.info["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def mails(self) -> list[EmailMessage]:
        folder = Path(self.info["mailboxDir"])
        return [
            message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted(folder.glob("*.eml"))
        ]

    def mails_about(self, escrow_id: str) -> list[EmailMessage]:
        return [m for m in self.mails() if escrow_id in subject(m)]

    def audit_rows(self, escrow_id: str) -> list[dict[str, Any]]:
        table = self.info["tableEnv"]["AUDIT_TABLE_NAME"]
        answer = self.aws("dynamodb").query(
            TableName=table,
            KeyConditionExpression="escrow_id = :e",
            ExpressionAttributeValues={":e": {"S": escrow_id}},
        )
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in answer["Items"]]

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the stack did not stop on {sig!r}:\n{self.log()}") from None


def subject(mail: EmailMessage) -> str:
    """The Subject header unfolded (a long one is folded onto the next line)."""
    return " ".join(str(mail["Subject"]).split())


def start_stack(workdir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    state = workdir / "state"
    log_path = workdir / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env.update(extra_env or {})
    port = free_port()
    command = [
        sys.executable, "-m", "local_stack",
        "--port", str(port),
        "--state-dir", str(state),
        "--process-every", "0.5",
        "--monitor-every", "2",
        "--log-level", "INFO",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    stack = Stack(process, state, log_path, {})
    info_path = state / "stack.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the stack exited with {process.returncode}:\n{stack.log()}")
        if info_path.exists():
            stack.info = json.loads(info_path.read_text())
            try:
                if httpx.get(f"{stack.api}/_local/health", timeout=2).status_code == 200:
                    return stack
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    stack.stop(signal.SIGKILL)
    raise AssertionError(f"the stack was not ready in {START_TIMEOUT_S}s:\n{stack.log()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.log()


def eventually(check: Callable[[], T | None], what: str, stack: Stack | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` (and the stack's
    log) after ``EVENTUALLY_S``: a bound on waiting for asynchronous effects."""
    deadline = time.monotonic() + EVENTUALLY_S
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    log = f"\n--- stack log ---\n{stack.log()}" if stack is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}{log}")
