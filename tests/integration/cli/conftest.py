"""The CLI against real servers: the session's own redis-server (``redis_url``), the Upstash
REST stand-in, moto. Each test gets a queue namespace of its own."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from escrow_jobs_cli.main import main
from jobs_core import JobQueue, Settings


@dataclass
class Run:
    code: int
    out: str
    err: str


RunCli = Callable[..., Run]


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli_env(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "JOBS_NAMESPACE": f"cli-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def queue(cli_env: dict[str, str]) -> JobQueue:
    """The same queue the CLI sees, for arranging and checking."""
    return JobQueue.from_settings(Settings.from_env(cli_env))


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> RunCli:
    def run(*argv: str, env: dict[str, str] | None = None, stdin: io.StringIO | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            environ=cli_env if env is None else env,
            stdout=out,
            stderr=err,
            stdin=stdin or io.StringIO(""),
            sleep=lambda _s: None,
        )
        return Run(code, out.getvalue(), err.getvalue())

    return run
