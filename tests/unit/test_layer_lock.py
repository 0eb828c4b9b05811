"""The layer's requirements.txt pins exactly what the tests run with, for the Lambda runtime."""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_layer", ROOT / "layers/lock_layer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_requirements_txt_is_the_lock_of_the_tested_set() -> None:
    lock = _lock_module()
    text = (ROOT / "layers/jobs_core/requirements.txt").read_text()
    assert text == lock.render(), "layers/jobs_core/requirements.txt is stale: run make lock"
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9-]+==[^\s;,<>=!~]+", p) for p in pins), pins
    for pin in pins:  # every version is the one installed here, where the tests ran
        name, version = pin.split("==")
        assert metadata.version(name) == version, pin


def test_every_direct_dependency_and_what_it_pulls_in_is_pinned() -> None:
    lock = _lock_module()
    pinned = {line.split("==")[0] for line in
              (ROOT / "layers/jobs_core/requirements.txt").read_text().splitlines()
              if "==" in line}  # fmt: skip
    direct = {r.name for r in lock.direct_requirements()}
    assert direct <= pinned
    # the extras' packages too: the tracer's X-Ray SDK, pydantic's email validator
    assert {"aws-xray-sdk", "email-validator", "pydantic-core", "anyio"} <= pinned
