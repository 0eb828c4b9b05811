"""The local stack under real use: racing DynamoDB requests, bursts of clients, secrets in
query strings, a Redis that is gone, Ctrl-C with piped output."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_stack.api_events import GatewayRoute
from local_stack.aws import LocalAws
from local_stack.http_gateway import HttpGateway
from local_stack.lambda_runtime import LocalFunction
from local_stack.redis_process import free_port
from local_stack.template import FunctionSpec

ROOT = Path(__file__).resolve().parents[3]
IN_FLIGHT = {"now": 0, "most": 0}
_lock = threading.Lock()


def slow_handler(event: Any, context: Any) -> dict[str, Any]:
    """Holds each request 0.2 s and counts how many are in at once."""
    with _lock:
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["most"] = max(IN_FLIGHT["most"], IN_FLIGHT["now"])
    time.sleep(0.2)
    with _lock:
        IN_FLIGHT["now"] -= 1
    return {"statusCode": 200, "body": '{"ok": true}'}


def _function(instances: int) -> LocalFunction:
    spec = FunctionSpec("Slow", "slow", __name__, "slow_handler", timeout_s=5, memory_mb=128,
                        reserved_concurrency=None)  # fmt: skip
    return LocalFunction(spec, instances=instances)


def test_fifty_clients_at_once_are_all_served_by_several_warm_instances(
    caplog: pytest.LogCaptureFixture,
) -> None:
    IN_FLIGHT.update(now=0, most=0)
    route = GatewayRoute("GET", "/slow", _function(instances=8), authorized=False)
    gateway = HttpGateway([route], authorizer=lambda token: {}, port=0).start()
    caplog.set_level(logging.INFO, logger="local_stack.gateway")
    try:

        def get(i: int) -> int:
            url = f"{gateway.url}/slow?access_token=s3cret-{i}"
            return httpx.get(url, timeout=30).status_code

        with ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(get, range(50)))
    finally:
        gateway.stop()
    assert codes == [200] * 50  # no connection reset, no error
    assert 2 <= IN_FLIGHT["most"] <= 8  # concurrent, and never more than its instances
    lines = [r.getMessage() for r in caplog.records if r.name == "local_stack.gateway"]
    assert len([line for line in lines if line.startswith("GET /slow 200")]) == 50
    assert not any("s3cret" in line or "access_token" in line for line in lines)


def test_one_instance_runs_one_event_at_a_time() -> None:
    IN_FLIGHT.update(now=0, most=0)
    function = _function(instances=1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: function.invoke({}, serial=True), range(4)))
    assert IN_FLIGHT["most"] == 1


def test_racing_dynamodb_requests_lose_no_write() -> None:
    """A failing transaction must not wipe the writes that raced it (moto restores a copy
    of the table when a transaction fails)."""
    aws = LocalAws()
    aws.start()
    try:
        client = aws.client("dynamodb")
        client.create_table(
            TableName="race", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )  # fmt: skip
        client.put_item(TableName="race", Item={"pk": {"S": "guard"}})

        def writes() -> None:
            own = aws.client("dynamodb")
            for i in range(150):
                own.put_item(TableName="race", Item={"pk": {"S": f"item-{i}"}})

        def failing_transactions() -> None:
            own = aws.client("dynamodb")
            for i in range(150):
                with pytest.raises(own.exceptions.TransactionCanceledException):
                    own.transact_write_items(TransactItems=[
                        *({"Put": {"TableName": "race", "Item": {"pk": {"S": f"tx-{i}-{n}"}}}}
                          for n in range(24)),
                        {"Put": {"TableName": "race", "Item": {"pk": {"S": "guard"}},
                                 "ConditionExpression": "attribute_not_exists(pk)"}},
                    ])  # fmt: skip

        threads = [threading.Thread(target=writes), threading.Thread(target=failing_transactions),
                   threading.Thread(target=failing_transactions)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        keys = {i["pk"]["S"] for i in client.scan(TableName="race")["Items"]}
    finally:
        aws.stop()
    assert keys == {"guard"} | {f"item-{i}" for i in range(150)}


def _stack_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    own = ("REDIS_", "UPSTASH_", "KV_", "JOBS_", "AWS_", "ESCROW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(ESCROW_LOCAL_PORT=str(free_port()), ESCROW_LOCAL_STATE_DIR=str(tmp_path), **extra)
    return env


def test_a_stale_redis_url_is_refused_at_start(tmp_path: Path) -> None:
    dead = f"redis://:pw-{os.getpid()}@127.0.0.1:{free_port()}/0"
    run = subprocess.run(
        [sys.executable, "-m", "local_stack"], cwd=ROOT, env=_stack_env(tmp_path, REDIS_URL=dead),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "REDIS_URL (127.0.0.1:" in run.stdout and "does not answer" in run.stdout
    assert "unset REDIS_URL" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert f"pw-{os.getpid()}" not in run.stdout + run.stderr


@pytest.mark.slow
def test_ctrl_c_stops_the_stack_when_its_output_pipe_is_closed(tmp_path: Path) -> None:
    """``make dev | tee log``, tee gone: Ctrl-C still stops everything."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack"], cwd=ROOT, env=_stack_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    seen = b""
    while b"Ctrl-C" not in seen and time.monotonic() < deadline:  # the banner is printed
        line = process.stdout.readline()
        if not line:
            break
        seen += line
    assert b"Ctrl-C" in seen, seen[-2000:]
    process.stdout.close()  # the reader has gone: every later print is a broken pipe
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=30) in (0, 1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
