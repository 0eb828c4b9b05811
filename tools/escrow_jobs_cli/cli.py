"""One invocation of the CLI: its exit codes, its expected errors, and ``Cli``, which holds
the parsed arguments, the streams, the environment and the queue every command uses."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from jobs_core import ConfigurationError, JobQueue, JobType, Settings

from . import render

EXIT_OK = 0
EXIT_DECLINED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_DRIFT = 5  # reconcile: some escrow disagrees with Stripe
EXIT_INTERRUPTED = 130
ENV_ACTOR = "ESCROW_JOBS_ACTOR"


class CliError(Exception):
    """An expected failure: printed as one line (or a JSON object), never a traceback."""

    def __init__(self, code: int, kind: str, message: str, **extra: Any) -> None:
        self.code, self.kind, self.message, self.extra = code, kind, message, extra
        super().__init__(message)


@dataclass
class Cli:
    """One invocation: the parsed arguments, the streams, the environment, the queue."""

    args: argparse.Namespace
    environ: Mapping[str, str]
    out: TextIO
    err: TextIO
    stdin: TextIO
    sleep: Callable[[float], None] = time.sleep
    _queue: JobQueue | None = field(default=None, init=False)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def show_pii(self) -> bool:
        return bool(getattr(self.args, "show_pii", False))

    def env(self) -> dict[str, str]:
        env = dict(self.environ)
        if getattr(self.args, "redis_url", None):
            env["REDIS_URL"] = self.args.redis_url
            env["JOBS_BACKEND"] = "redis"
        if getattr(self.args, "namespace", None):
            env["JOBS_NAMESPACE"] = self.args.namespace
        return env

    def queue(self) -> JobQueue:
        if self._queue is None:
            env = self.env()
            try:
                settings = Settings.from_env(env)
            except ConfigurationError as exc:
                if getattr(self.args, "redis_url", None):  # name the option that was given
                    raise ConfigurationError(str(exc).replace("REDIS_URL", "--redis-url")) from None
                raise
            if settings.backend == "memory" and not env.get("JOBS_BACKEND"):
                self.note(
                    "no Redis configured (set REDIS_URL or UPSTASH_REDIS_REST_URL and "
                    "UPSTASH_REDIS_REST_TOKEN): using an empty in-process queue"
                )
            self._queue = JobQueue.from_settings(settings)
        return self._queue

    def emit(self, data: Any, text: str) -> None:
        """``data`` as JSON with ``--json``, else ``text``."""
        self.out.write((render.dumps(data) if self.json else text) + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        self.err.write(f"note: {message}\n")

    def scrub(self, value: Any) -> Any:
        return value if self.show_pii else render.redact(value)

    @property
    def width(self) -> int:
        """Tables fit this: the terminal's width (``COLUMNS``), or a default off a terminal."""
        return render.width_of(self.out, self.environ)

    def actor(self) -> str:
        """Who acts, as the audit records it: ``ESCROW_JOBS_ACTOR``, else user@host (cli)."""
        name = self.environ.get(ENV_ACTOR, "").strip()
        if not name:
            import getpass
            import socket

            try:
                user = getpass.getuser()
            except Exception:  # no login name (a container): the host still says where
                user = "unknown"
            name = f"{user}@{socket.gethostname()} (cli)"
        return name[:80]

    def confirm(self, prompt: str, what: str) -> bool:
        """Ask on the terminal; refuse (exit 2) when there is none: scripts pass --yes."""
        if not render._isatty(self.stdin):
            raise CliError(
                EXIT_BAD_INPUT,
                "confirmation_required",
                f"refusing to {what} without a confirmation: run it in a terminal, or pass --yes",
            )
        self.err.write(prompt)
        self.err.flush()
        return self.stdin.readline().strip().lower() in ("y", "yes")


def parse_job_type(name: str) -> JobType:
    """``name`` as a JobType, or the usage error that lists the known ones."""
    try:
        return JobType(name)
    except ValueError:
        known = ", ".join(t.value for t in JobType)
        raise CliError(
            EXIT_BAD_INPUT,
            "bad_input",
            f"unknown job type {name!r}; one of: {known}",
            field="type",
        ) from None
