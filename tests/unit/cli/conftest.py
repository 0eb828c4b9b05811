"""CLI unit tests: no network. The CLI runs in-process on the embedded in-memory Redis
(fakeredis), each test in a namespace of its own."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from escrow_jobs_cli.main import main


@dataclass
class Run:
    code: int
    out: str
    err: str


class TtyInput(io.StringIO):
    """stdin that claims to be a terminal (for the purge confirmation)."""

    def isatty(self) -> bool:
        return True


RunCli = Callable[..., Run]


@pytest.fixture
def memory_env() -> dict[str, str]:
    return {"JOBS_BACKEND": "memory", "JOBS_NAMESPACE": f"cli-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def run_cli(memory_env: dict[str, str]) -> RunCli:
    def run(*argv: str, env: dict[str, str] | None = None, stdin: io.StringIO | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            environ=memory_env if env is None else env,
            stdout=out,
            stderr=err,
            stdin=stdin or io.StringIO(""),
            sleep=lambda _s: None,
        )
        return Run(code, out.getvalue(), err.getvalue())

    return run
