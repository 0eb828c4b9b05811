"""What a cold start builds: importing a handler as Lambda does (task root and layer on
the path, a fresh interpreter) loads the operator API's routes only on the first HTTP
event, the processor's own modules (drain, batch, kick, metrics, the workers) and the
queue's (operations, specs, keys, the Lua scripts) only on the first event, reads the
Lua scripts without ``importlib.resources`` (whose import brings tempfile, zipfile and
the compressors), and leaves the queue's pydantic models unbuilt until first use
(``defer_build``). The cost itself is a bench row (``bench.cold_import_bench``), not a
timed test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.template.cfn import ROOT

LAYER = ROOT / "layers" / "jobs_core"
PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
import jobs_core
print(json.dumps({
    "modules": sorted(n for n in sys.modules if n.split(".")[0] in
                      ("operator_api", "aws_lambda_powertools", "jobs_core", "importlib",
                       "tempfile", "zipfile", "concurrent")),
    "built": sorted(m.__name__ for m in (jobs_core.Job, jobs_core.QueueStats,
                    jobs_core.EnqueueOptions) if m.__pydantic_complete__),
}))
"""


def _cold_import(function: str) -> dict[str, list[str]]:
    argv = [sys.executable, "-I", "-c", PROBE, str(ROOT / "functions" / function), str(LAYER)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("function", ["job_processor", "monitor"])
def test_a_cold_import_builds_none_of_the_queue_models(function: str) -> None:
    assert _cold_import(function)["built"] == []


def test_the_processors_cold_import_leaves_the_operator_routes_to_the_first_http_event() -> None:
    modules = _cold_import("job_processor")["modules"]
    assert "operator_api.events" in modules  # the probe sees the handler's own modules
    for lazy in ("operator_api.routes", "operator_api.browse", "operator_api.models",
                 "operator_api.console", "aws_lambda_powertools.event_handler"):  # fmt: skip
        assert lazy not in modules


@pytest.mark.parametrize("function", ["job_processor", "monitor"])
def test_a_cold_import_leaves_the_processor_and_the_workers_to_the_first_event(
    function: str,
) -> None:
    modules = _cold_import(function)["modules"]
    assert "jobs_core.models" in modules  # the probe sees the layer's modules
    for lazy in ("jobs_core.processor", "jobs_core.defaults", "jobs_core.workers",
                 "concurrent.futures"):  # fmt: skip
        assert not any(m == lazy or m.startswith(lazy + ".") for m in modules), lazy


@pytest.mark.parametrize("function", ["job_processor", "monitor"])
def test_a_cold_import_reads_the_lua_scripts_without_importlib_resources(function: str) -> None:
    modules = _cold_import(function)["modules"]
    for lazy in ("importlib.resources", "tempfile", "zipfile"):
        assert lazy not in modules


@pytest.mark.parametrize("function", ["job_processor", "monitor"])
def test_a_cold_import_leaves_the_queue_and_its_scripts_to_the_first_event(function: str) -> None:
    modules = _cold_import(function)["modules"]
    assert "jobs_core.models" in modules  # the models (and pydantic) still load at import
    for lazy in ("jobs_core.queue", "jobs_core.views"):
        assert not any(m == lazy or m.startswith(lazy + ".") for m in modules), lazy
