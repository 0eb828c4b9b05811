"""The command line: ``build_parser`` maps each command to its ``cmd_*`` function."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from jobs_core import LIST_STATES

from .cli import EXIT_BAD_INPUT, CliError
from .commands.dlq import (
    MAX_BATCH,
    REPLAY_BATCH,
    cmd_dlq_list,
    cmd_dlq_purge,
    cmd_dlq_replay,
    cmd_dlq_show,
)
from .commands.drain import cmd_drain
from .commands.jobs import (
    cmd_enqueue,
    cmd_jobs_cancel,
    cmd_jobs_list,
    cmd_jobs_run_now,
    cmd_jobs_show,
)
from .commands.partners import cmd_partners_enable, cmd_partners_list, cmd_partners_show
from .commands.queue import cmd_queue_pause, cmd_queue_resume
from .commands.reconcile import cmd_reconcile
from .commands.stats import cmd_stats


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` answers in the chosen format."""

    def error(self, message: str) -> NoReturn:
        raise CliError(EXIT_BAD_INPUT, "usage", f"{self.prog}: {message}")


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
    parser.add_argument("--version", action="store_true", help="print the version and exit")
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

    jobs = commands.add_parser("jobs", parents=[common], help="list, look at and steer jobs")
    jobs_cmds = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", parser_class=_Parser)
    jobs_cmds.required = True
    listing = jobs_cmds.add_parser(
        "list", parents=[common], help="jobs by state and type, or the jobs of one escrow"
    )
    listing.add_argument(
        "--state", choices=LIST_STATES, default="ready", help="ready (default), scheduled, "
        "running or dead",
    )  # fmt: skip
    listing.add_argument("--type", default=None, metavar="T", help="one job type")
    listing.add_argument(
        "--escrow", default=None, metavar="ID", help="the waiting, running and dead jobs of "
        "this escrow (its transaction id)",
    )  # fmt: skip
    listing.add_argument("--limit", type=_positive_int(1, 500), default=20, metavar="N")
    listing.add_argument("--offset", type=_positive_int(0, 10**6), default=0, metavar="N")
    listing.add_argument("--newest", action="store_true", help="newest first (default oldest)")
    listing.set_defaults(run=cmd_jobs_list)
    show = jobs_cmds.add_parser(
        "show", parents=[common], help="a job: state, options, every attempt, payload"
    )
    show.add_argument("id", help="the job id")
    show.set_defaults(run=cmd_jobs_show)
    cancel = jobs_cmds.add_parser(
        "cancel", parents=[common], help="take a waiting job out of the queue (asks first)"
    )
    cancel.add_argument("id", help="the job id")
    cancel.add_argument("--yes", "-y", action="store_true", help="do not ask (for scripts)")
    cancel.set_defaults(run=cmd_jobs_cancel)
    run_now = jobs_cmds.add_parser(
        "run-now", parents=[common], help="make a scheduled or backing-off job due now"
    )
    run_now.add_argument("id", help="the job id")
    run_now.set_defaults(run=cmd_jobs_run_now)

    queue = commands.add_parser("queue", parents=[common], help="pause or resume a job type")
    queue_cmds = queue.add_subparsers(dest="queue_command", metavar="ACTION", parser_class=_Parser)
    queue_cmds.required = True
    pause = queue_cmds.add_parser("pause", parents=[common], help="stop claiming a job type")
    pause.add_argument("type", metavar="TYPE")
    pause.set_defaults(run=cmd_queue_pause)
    resume = queue_cmds.add_parser("resume", parents=[common], help="claim a job type again")
    resume.add_argument("type", metavar="TYPE")
    resume.set_defaults(run=cmd_queue_resume)

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

    partners = commands.add_parser(
        "partners", parents=[common], help="partners' webhook endpoints: disabled, re-enable"
    )
    partner_cmds = partners.add_subparsers(
        dest="partners_command", metavar="ACTION", parser_class=_Parser
    )
    partner_cmds.required = True
    partner_cmds.add_parser(
        "list", parents=[common], help="disabled endpoints and their held webhooks"
    ).set_defaults(run=cmd_partners_list)
    partner_show = partner_cmds.add_parser("show", parents=[common], help="one partner's health")
    partner_show.add_argument("partner", help="the partner (its webhook secret reference)")
    partner_show.set_defaults(run=cmd_partners_show)
    enable = partner_cmds.add_parser(
        "enable", parents=[common], help="re-enable an endpoint: its held webhooks are due now"
    )
    enable.add_argument("partner", help="the partner (its webhook secret reference)")
    enable.set_defaults(run=cmd_partners_enable)

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

    reconcile = commands.add_parser(
        "reconcile", parents=[common], help="compare the escrows with Stripe (changes nothing)"
    )
    reconcile.add_argument("--function", help="the escrow API function (ESCROW_API_FUNCTION_NAME)")
    reconcile.add_argument(
        "--days",
        type=_positive_int(0, 90),
        help="also check escrows closed this many days ago or less (default: the function's)",
    )
    reconcile.set_defaults(run=cmd_reconcile)

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
