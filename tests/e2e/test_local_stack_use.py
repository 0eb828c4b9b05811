"""The local stack as a developer uses it: a burst of clients, the log, the files it writes
for other tools, what the banner says."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.conftest import Stack


def test_a_burst_of_clients_is_served_concurrently(stack: Stack) -> None:
    def get(i: int) -> int:
        url = f"{stack.api}/api/escrow/esc_UNKNOWN{i}?access_token=leak-{i}"
        return httpx.get(url, headers=stack.auth("buyer"), timeout=60).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(get, range(40)))
    assert codes == [404] * 40  # every client answered: no reset, no 5xx
    log = stack.log()
    assert "GET /api/escrow/esc_UNKNOWN1 404" in log  # the route is logged...
    assert "leak-" not in log and "access_token" not in log  # ...never the query


def test_it_writes_an_env_vars_file_for_sam_local_invoke(stack: Stack) -> None:
    path = stack.state_dir / "sam-env.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = json.loads(path.read_text())
    assert set(env) == {"EscrowApiFunction", "JobProcessorFunction", "MonitorFunction"}
    for variables in env.values():
        assert variables["REDIS_URL"] == stack.info["redisUrl"]
        assert variables["AWS_ENDPOINT_URL"] == stack.info["awsEndpoint"]
        assert variables["ESCROW_TABLE_NAME"] == stack.info["tableEnv"]["ESCROW_TABLE_NAME"]


def test_the_banner_says_where_the_cli_is(stack: Stack) -> None:
    assert ".venv/bin/escrow-jobs stats" in stack.log()
