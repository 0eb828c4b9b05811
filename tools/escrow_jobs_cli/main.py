"""``escrow-jobs``: inspect and operate the job queue from a terminal or a script.

Commands::

    escrow-jobs --version
    escrow-jobs stats [--watch [--interval S] [--count N]]
    escrow-jobs jobs list [--state S] [--type T] [--escrow ID] [--limit N] [--offset N]
                          [--newest]
    escrow-jobs jobs show ID                  (with every attempt and operator action)
    escrow-jobs jobs cancel ID [--yes]
    escrow-jobs jobs run-now ID
    escrow-jobs queue pause TYPE | queue resume TYPE
    escrow-jobs dlq list [--limit N] [--offset N]
    escrow-jobs dlq show ID
    escrow-jobs dlq replay (ID... | --all) [--batch-size N] [--progress | --no-progress]
    escrow-jobs dlq purge [ID... | --all] [--yes]
    escrow-jobs enqueue TYPE --payload JSON|@FILE|- [--dedupe-key K] [--delay S]
                         [--max-attempts N] [--correlation-id C]
    escrow-jobs drain [--limit N] [--type TYPE ...]

Options valid before or after the command: ``--json`` (one JSON document on stdout,
errors too), ``--show-pii`` (email addresses in payloads and errors shown whole; they are
redacted by default), ``--redis-url URL`` and ``--namespace NS`` (override ``REDIS_URL``
and ``JOBS_NAMESPACE``).

The queue is the one the environment names, exactly as the Lambdas read it
(``jobs_core.Settings.from_env``): Upstash (``UPSTASH_REDIS_REST_URL``/``_TOKEN``),
``REDIS_URL``, or with neither the embedded in-memory Redis (empty; a note says so).

Exit codes: 0 done; 1 declined (a purge or cancel not confirmed, or a job in a state that
does not allow the action); 2 bad input or configuration; 3 Redis unreachable or failing;
4 no such job; 130 interrupted. Actions are audited with who did them:
``ESCROW_JOBS_ACTOR``, else ``user@host (cli)``.

    >>> env = {"REDIS_URL": "redis://127.0.0.1:6390/0"}
    >>> main(["--json", "stats"], environ=env)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from jobs_core import (
    BackendError,
    ConfigurationError,
    InvalidJobError,
    JobNotFoundError,
    JobStateError,
)

from . import __version__, render
from .cli import (
    EXIT_BAD_INPUT,
    EXIT_DECLINED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Cli,
    CliError,
)
from .parser import build_parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    if "--version" in argv[:1]:
        out.write(f"escrow-jobs {__version__}\n")
        return EXIT_OK
    try:
        args = build_parser().parse_args(argv)
        as_json = bool(getattr(args, "json", False))
        cli = Cli(
            args, os.environ if environ is None else environ, out, err, stdin or sys.stdin, sleep
        )
        code: int = args.run(cli)
        return code
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `escrow-jobs dlq list | head`
        return EXIT_OK
    except Exception as exc:
        failure = _expected(exc)
        if failure is None:
            raise
        _report(failure, out, err, as_json=as_json)
        return failure.code


def _expected(exc: Exception) -> CliError | None:
    """The CliError an expected exception stands for; None for a bug (let it propagate)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, BackendError):
        what = "cannot reach Redis" if exc.transient else "Redis failed"
        return CliError(
            EXIT_UNREACHABLE, "redis_unreachable", f"{what}: {exc}", backend=exc.backend
        )
    if isinstance(exc, InvalidJobError):
        return CliError(EXIT_BAD_INPUT, "bad_input", render.redact_text(str(exc)), field=exc.field)
    if isinstance(exc, JobNotFoundError):
        return CliError(EXIT_NOT_FOUND, "not_found", str(exc), id=exc.job_id)
    if isinstance(exc, JobStateError):
        return CliError(EXIT_DECLINED, "wrong_state", str(exc), id=exc.job_id, state=exc.state)
    if isinstance(exc, ConfigurationError):
        return CliError(EXIT_BAD_INPUT, "configuration", f"configuration error: {exc}")
    return None


def _report(failure: CliError, out: TextIO, err: TextIO, *, as_json: bool) -> None:
    if as_json:
        body = {"error": {"kind": failure.kind, "message": failure.message, **failure.extra}}
        out.write(render.dumps({**body, "exitCode": failure.code}) + "\n")
    else:
        err.write(f"error: {failure.message}\n")


if __name__ == "__main__":
    sys.exit(main())
