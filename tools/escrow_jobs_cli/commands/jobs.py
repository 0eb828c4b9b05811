"""``escrow-jobs jobs list|show|cancel|run-now`` and ``escrow-jobs enqueue``: jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from jobs_core import job_summary

from .. import render
from ..cli import (
    EXIT_BAD_INPUT,
    EXIT_DECLINED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    Cli,
    CliError,
    parse_job_type,
)


def cmd_jobs_list(cli: Cli) -> int:
    args, queue = cli.args, cli.queue()
    if args.escrow:
        jobs, complete = queue.find_jobs(args.escrow, limit=args.limit)
        views = [job_summary(j) for j in jobs]
        what = f"waiting, running or dead job(s) of escrow {args.escrow}"
        note = "" if complete else " (the search was truncated)"
        text = f"{len(views)} {what}{note}; succeeded jobs are found by id (jobs show ID)"
        data: dict[str, Any] = {"escrowId": args.escrow, "jobs": views, "complete": complete}
    else:
        job_type = parse_job_type(args.type) if args.type else None
        page = queue.list_jobs(
            args.state,
            job_type=job_type,
            newest_first=args.newest,
            offset=args.offset,
            limit=args.limit,
        )
        views = [job_summary(j) for j in page.jobs]
        kind = f"{args.state} {job_type.value if job_type else ''} jobs".replace("  ", " ")
        order = "newest" if args.newest else "oldest"
        more = "" if page.complete else "+"
        shown = f"{args.offset + 1}-{args.offset + len(views)}" if views else "none"
        text = f"{shown} of {page.total}{more} {kind} ({order} first)"
        data = {"state": args.state, "total": page.total, "complete": page.complete,
                "offset": args.offset, "jobs": views}  # fmt: skip
    if views:
        text = render.job_rows(cli.scrub(views), width=cli.width) + "\n\n" + text
    cli.emit(cli.scrub(data), text)
    return EXIT_OK


def cmd_jobs_show(cli: Cli) -> int:
    job = cli.queue().get_job_status(cli.args.id)
    if job is None:
        raise CliError(
            EXIT_NOT_FOUND, "not_found", f"job {cli.args.id} not found (or its record expired)"
        )
    view = render.job_view(job, show_pii=cli.show_pii)
    cli.emit(view, render.job_text(view, width=cli.width))
    return EXIT_OK


def cmd_jobs_cancel(cli: Cli) -> int:
    job_id = cli.args.id
    prompt = f"Cancel job {job_id}? It will not run. [y/N] "
    if not cli.args.yes and not cli.confirm(prompt, "cancel"):
        raise CliError(EXIT_DECLINED, "declined", "nothing cancelled")
    cli.queue().cancel_job(job_id, actor=cli.actor())
    cli.emit({"id": job_id, "state": "cancelled"}, f"cancelled job {job_id}")
    return EXIT_OK


def cmd_jobs_run_now(cli: Cli) -> int:
    job_id = cli.args.id
    cli.queue().run_job_now(job_id, actor=cli.actor())
    cli.emit({"id": job_id, "state": "queued"}, f"job {job_id} is due now")
    return EXIT_OK


def cmd_enqueue(cli: Cli) -> int:
    job_type = parse_job_type(cli.args.type)
    payload = _payload(cli.args.payload, cli.stdin)
    queue = cli.queue()
    options = {
        "dedupe_key": cli.args.dedupe_key,
        "delay_s": cli.args.delay or None,
        "max_attempts": cli.args.max_attempts,
        "correlation_id": cli.args.correlation_id,
    }
    result = queue.enqueue_batch([(job_type, payload, options)])
    job_id, duplicate = result.ids[0], result.duplicates[0]
    job = queue.get_job_status(job_id)
    state = job.state.value if job else "unknown"
    if duplicate:
        text = (
            f"not enqueued: dedupe key {cli.args.dedupe_key!r} already holds "
            f"{job_type.value} job {job_id} ({state})"
        )
    else:
        text = f"enqueued {job_type.value} job {job_id} ({state})"
    cli.emit({"id": job_id, "type": job_type.value, "state": state, "duplicate": duplicate}, text)
    return EXIT_OK


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
