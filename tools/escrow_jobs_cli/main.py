"""``escrow-jobs``: inspect and operate the job queue from a terminal or a script.

Commands::

    escrow-jobs stats [--watch [--interval S] [--count N]]
    escrow-jobs jobs show ID
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

Exit codes: 0 done; 1 declined (a purge not confirmed); 2 bad input or configuration;
3 Redis unreachable or failing; 4 no such job; 130 interrupted.

    >>> env = {"REDIS_URL": "redis://127.0.0.1:6390/0"}
    >>> main(["--json", "stats"], environ=env)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from jobs_core import (
    BackendError,
    ConfigurationError,
    InvalidJobError,
    JobQueue,
    JobState,
    JobType,
    Settings,
)

from . import render

EXIT_OK = 0
EXIT_DECLINED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_INTERRUPTED = 130

REPLAY_BATCH = 100
PURGE_BATCH = 1000
MAX_BATCH = 1000  # the engine's replay/purge scripts take at most this many ids per call


class CliError(Exception):
    """An expected failure: printed as one line (or a JSON object), never a traceback."""

    def __init__(self, code: int, kind: str, message: str, **extra: Any) -> None:
        self.code, self.kind, self.message, self.extra = code, kind, message, extra
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` answers in the chosen format."""

    def error(self, message: str) -> NoReturn:
        raise CliError(EXIT_BAD_INPUT, "usage", f"{self.prog}: {message}")


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
            settings = Settings.from_env(env)
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


# -- commands ---------------------------------------------------------------------------


def cmd_stats(cli: Cli) -> int:
    try:
        return _stats(cli)
    except KeyboardInterrupt:
        if not cli.args.watch:
            raise
        return EXIT_OK  # Ctrl-C is how a watch ends


def _stats(cli: Cli) -> int:
    queue = cli.queue()
    refreshes = 0
    watch = cli.args.watch
    while True:
        stats = queue.get_queue_stats()
        view = render.stats_view(
            stats, namespace=queue.settings.namespace, backend=queue.settings.backend
        )
        if cli.json:
            # one document, or one JSON line per refresh when watching
            line = json.dumps(view) if watch else render.dumps(view)
            cli.out.write(line + "\n")
        else:
            if watch and render._isatty(cli.out):
                cli.out.write("\x1b[H\x1b[2J")  # clear the screen, cursor home
            stamp = time.strftime("%H:%M:%S")
            footer = f"\n\n{stamp}  refreshing every {cli.args.interval:g}s, Ctrl-C to stop"
            cli.out.write(render.stats_text(view) + (footer if watch else "") + "\n")
        cli.out.flush()
        refreshes += 1
        if not watch or (cli.args.count and refreshes >= cli.args.count):
            return EXIT_OK
        cli.sleep(cli.args.interval)


def cmd_jobs_show(cli: Cli) -> int:
    job = cli.queue().get_job_status(cli.args.id)
    if job is None:
        raise CliError(
            EXIT_NOT_FOUND, "not_found", f"job {cli.args.id} not found (or its record expired)"
        )
    view = render.job_view(job, show_pii=cli.show_pii)
    cli.emit(view, render.job_text(view))
    return EXIT_OK


def cmd_dlq_list(cli: Cli) -> int:
    queue = cli.queue()
    jobs = queue.get_dead_letter_jobs(cli.args.limit, offset=cli.args.offset)
    total = queue.get_queue_stats().dead_letter
    views = [render.job_view(j, show_pii=cli.show_pii) for j in jobs]
    if not views:
        text = "the dead-letter queue is empty" if total == 0 else f"no entries past {total}"
    else:
        shown = f"{cli.args.offset + 1}-{cli.args.offset + len(views)}"
        text = f"{render.dead_rows(views)}\n\n{shown} of {total} dead-lettered jobs (newest first)"
    cli.emit({"total": total, "offset": cli.args.offset, "jobs": views}, text)
    return EXIT_OK


def cmd_dlq_show(cli: Cli) -> int:
    job = cli.queue().get_job_status(cli.args.id)
    if job is None or job.state is not JobState.DEAD:
        state = "not found" if job is None else f"its state is {job.state.value}"
        raise CliError(
            EXIT_NOT_FOUND,
            "not_found",
            f"job {cli.args.id} is not in the dead-letter queue ({state})",
        )
    view = render.job_view(job, show_pii=cli.show_pii)
    cli.emit(view, render.job_text(view))
    return EXIT_OK


def _selection(cli: Cli, verb: str, *, all_by_default: bool) -> list[str] | None:
    """The ids named on the command line, or None for "all"; refuses both or neither."""
    ids: list[str] = list(dict.fromkeys(cli.args.ids))  # unique, in order
    if ids and cli.args.all:
        raise CliError(EXIT_BAD_INPUT, "usage", f"give job ids or --all to {verb}, not both")
    if not ids and not cli.args.all and not all_by_default:
        raise CliError(EXIT_BAD_INPUT, "usage", f"give the job ids to {verb}, or --all")
    return ids or None


def cmd_dlq_replay(cli: Cli) -> int:
    queue = cli.queue()
    ids = _selection(cli, "replay", all_by_default=False)
    batch = cli.args.batch_size
    replayed: list[str] = []
    # --all: the size now bounds the work, so jobs that die again meanwhile are not
    # replayed round and round by this command.
    total = len(ids) if ids is not None else queue.get_queue_stats().dead_letter
    progress = render.ProgressBar(
        total,
        cli.err,
        label="replayed",
        enabled=False if cli.json else cli.args.progress,
    )
    progress.draw()
    if ids is not None:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            done = queue.replay_dead_letter(chunk, limit=len(chunk))
            replayed += done
            progress.advance(len(chunk))
    else:
        while len(replayed) < total:
            done = queue.replay_dead_letter(None, limit=min(batch, total - len(replayed)))
            if not done:
                break
            replayed += done
            progress.advance(len(done))
    progress.finish()
    missing = [] if ids is None else sorted(set(ids) - set(replayed))
    text = f"replayed {len(replayed)} job(s) from the dead-letter queue"
    if missing:
        text += f"; not in the dead-letter queue: {', '.join(missing)}"
    cli.emit({"replayed": len(replayed), "ids": replayed, "notFound": missing}, text)
    return EXIT_NOT_FOUND if missing and not replayed else EXIT_OK


def cmd_dlq_purge(cli: Cli) -> int:
    queue = cli.queue()
    ids = _selection(cli, "purge", all_by_default=True)
    count = len(ids) if ids is not None else queue.get_queue_stats().dead_letter
    if count == 0:
        cli.emit({"purged": 0}, "the dead-letter queue is empty: nothing to purge")
        return EXIT_OK
    what = f"{count} dead-lettered job(s)" if ids is None else f"{count} named job(s)"
    if not cli.args.yes and not _confirm(cli, f"Delete {what} for good? [y/N] "):
        raise CliError(EXIT_DECLINED, "declined", "nothing purged")
    purged = 0
    if ids is not None:
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            purged += queue.purge_dead_letter(chunk, limit=len(chunk))
    else:
        while purged < count:
            done = queue.purge_dead_letter(None, limit=min(PURGE_BATCH, count - purged))
            if done == 0:
                break
            purged += done
    cli.emit({"purged": purged}, f"purged {purged} job(s) from the dead-letter queue")
    return EXIT_OK


def _confirm(cli: Cli, prompt: str) -> bool:
    if not render._isatty(cli.stdin):
        raise CliError(
            EXIT_BAD_INPUT,
            "confirmation_required",
            "refusing to purge without a confirmation: run it in a terminal, or pass --yes",
        )
    cli.err.write(prompt)
    cli.err.flush()
    answer = cli.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def cmd_enqueue(cli: Cli) -> int:
    job_type = _job_type(cli.args.type)
    payload = _payload(cli.args.payload, cli.stdin)
    queue = cli.queue()
    job_id = queue.enqueue_job(
        job_type,
        payload,
        dedupe_key=cli.args.dedupe_key,
        delay_s=cli.args.delay,
        max_attempts=cli.args.max_attempts,
        correlation_id=cli.args.correlation_id,
    )
    job = queue.get_job_status(job_id)
    state = job.state.value if job else "unknown"
    cli.emit(
        {"id": job_id, "type": job_type.value, "state": state},
        f"enqueued {job_type.value} job {job_id} ({state})",
    )
    return EXIT_OK


def cmd_drain(cli: Cli) -> int:
    from jobs_core import Processor, ProcessorConfig, default_handlers

    env = cli.env()
    types = [_job_type(t) for t in cli.args.type] if cli.args.type else None
    queue = cli.queue()
    processor = Processor(queue, default_handlers(env), config=ProcessorConfig.from_environ(env))
    # The processor logs one JSON line per job on stdout (as in Lambda); here they belong
    # on stderr, so that stdout holds only the command's answer (``--json`` stays parseable).
    with _layer_log_to(cli.err):
        try:
            result = processor.process_batch(types, cli.args.limit)
        finally:
            processor.close()
    data = cli.scrub(result.to_dict())
    rows = [
        [j["id"], j["type"], j["attempt"], j["outcome"], render.shorten(j["error"] or "", 50)]
        for j in data["jobs"]
    ]
    tally = result.tally
    summary = (
        f"processed {tally.processed}: {tally.succeeded} succeeded, {tally.retried} to retry, "
        f"{tally.dead_lettered} dead-lettered"
        + (f", {tally.released} released unstarted" if tally.released else "")
    )
    if rows:
        text = render.table(["ID", "TYPE", "ATTEMPT", "OUTCOME", "ERROR"], rows, right={2})
        text += "\n\n" + summary
    else:
        text = "no job was due"
    cli.emit(data, text)
    return EXIT_OK


@contextlib.contextmanager
def _layer_log_to(stream: TextIO) -> Iterator[None]:
    from jobs_core import logger as layer_logger

    handler = layer_logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous = handler.setStream(stream)
    try:
        yield
    finally:
        if previous is not None:
            handler.setStream(previous)


def _job_type(name: str) -> JobType:
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


def _payload(raw: str, stdin: TextIO) -> dict[str, Any]:
    source = "--payload"
    if raw == "-":
        raw, source = stdin.read(), "the payload on stdin"
    elif raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw, source = path.read_text(), str(path)
        except OSError as exc:
            raise CliError(
                EXIT_BAD_INPUT,
                "bad_input",
                f"cannot read {path}: {exc.strerror}",
                field="payload",
            ) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CliError(
            EXIT_BAD_INPUT, "bad_input", f"{source} is not valid JSON: {exc}", field="payload"
        ) from None
    if not isinstance(data, dict):
        raise CliError(
            EXIT_BAD_INPUT, "bad_input", f"{source} must be a JSON object", field="payload"
        )
    return data


# -- the parser -------------------------------------------------------------------------


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 30 * 86_400:
        raise argparse.ArgumentTypeError("must be between 0 and 2592000 seconds")
    return value


def _interval(text: str) -> float:
    value = _seconds(text)
    if value < 0.1:
        raise argparse.ArgumentTypeError("must be at least 0.1 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the subparser's default.
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON document on stdout (errors too)",
    )
    common.add_argument(
        "--show-pii",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show email addresses whole (redacted by default)",
    )
    common.add_argument(
        "--redis-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="use this Redis instead of the environment's",
    )
    common.add_argument(
        "--namespace",
        default=argparse.SUPPRESS,
        metavar="NS",
        help="queue namespace (default: JOBS_NAMESPACE or escrow-jobs)",
    )

    parser = _Parser(
        prog="escrow-jobs",
        description="Inspect and operate the escrow job queue.",
        parents=[common],
        epilog="Exit codes: 0 done, 1 declined, 2 bad input, 3 Redis unreachable, "
        "4 not found, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    stats = commands.add_parser("stats", parents=[common], help="queue depth per job type")
    stats.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    stats.add_argument(
        "--interval",
        type=_interval,
        default=2.0,
        metavar="S",
        help="seconds between refreshes (default 2)",
    )
    stats.add_argument(
        "--count",
        type=_positive_int(1, 10**9),
        default=None,
        metavar="N",
        help="with --watch: stop after N refreshes",
    )
    stats.set_defaults(run=cmd_stats)

    jobs = commands.add_parser("jobs", parents=[common], help="look at one job")
    jobs_cmds = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", parser_class=_Parser)
    jobs_cmds.required = True
    show = jobs_cmds.add_parser("show", parents=[common], help="a job's state and payload")
    show.add_argument("id", help="the job id")
    show.set_defaults(run=cmd_jobs_show)

    dlq = commands.add_parser("dlq", parents=[common], help="the dead-letter queue")
    dlq_cmds = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", parser_class=_Parser)
    dlq_cmds.required = True
    dlq_list = dlq_cmds.add_parser("list", parents=[common], help="dead jobs, newest first")
    dlq_list.add_argument("--limit", type=_positive_int(1, 1000), default=20, metavar="N")
    dlq_list.add_argument("--offset", type=_positive_int(0, 10**9), default=0, metavar="N")
    dlq_list.set_defaults(run=cmd_dlq_list)
    dlq_show = dlq_cmds.add_parser("show", parents=[common], help="one dead job in full")
    dlq_show.add_argument("id", help="the job id")
    dlq_show.set_defaults(run=cmd_dlq_show)
    replay = dlq_cmds.add_parser(
        "replay", parents=[common], help="queue dead jobs again with fresh attempts"
    )
    replay.add_argument("ids", nargs="*", metavar="ID")
    replay.add_argument("--all", action="store_true", help="every dead-lettered job")
    replay.add_argument(
        "--batch-size",
        type=_positive_int(1, MAX_BATCH),
        default=REPLAY_BATCH,
        metavar="N",
        help=f"jobs per call (default {REPLAY_BATCH})",
    )
    replay.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when it is a terminal)",
    )
    replay.set_defaults(run=cmd_dlq_replay)
    purge = dlq_cmds.add_parser(
        "purge", parents=[common], help="delete dead jobs for good (asks first)"
    )
    purge.add_argument("ids", nargs="*", metavar="ID")
    purge.add_argument("--all", action="store_true", help="every dead-lettered job (default)")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask (for scripts)")
    purge.set_defaults(run=cmd_dlq_purge)

    enqueue = commands.add_parser("enqueue", parents=[common], help="queue one job")
    enqueue.add_argument("type", metavar="TYPE", help="a job type, e.g. send_release_email")
    enqueue.add_argument(
        "--payload",
        required=True,
        metavar="JSON",
        help="the payload: JSON text, @FILE, or - for stdin",
    )
    enqueue.add_argument("--dedupe-key", default=None, metavar="K")
    enqueue.add_argument(
        "--delay",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="run no earlier than S seconds from now",
    )
    enqueue.add_argument("--max-attempts", type=_positive_int(1, 100), default=None, metavar="N")
    enqueue.add_argument("--correlation-id", default=None, metavar="C")
    enqueue.set_defaults(run=cmd_enqueue)

    drain = commands.add_parser(
        "drain", parents=[common], help="run due jobs once with the real handlers"
    )
    drain.add_argument(
        "--limit",
        type=_positive_int(1, 1000),
        default=10,
        metavar="N",
        help="at most N jobs (default 10)",
    )
    drain.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only jobs of this type (repeatable)",
    )
    drain.set_defaults(run=cmd_drain)
    return parser


# -- entry point ------------------------------------------------------------------------


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
