"""``escrow-jobs jobs show ID`` and ``escrow-jobs enqueue TYPE --payload ...``: one job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from .. import render
from ..cli import EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_OK, Cli, CliError, parse_job_type


def cmd_jobs_show(cli: Cli) -> int:
    job = cli.queue().get_job_status(cli.args.id)
    if job is None:
        raise CliError(
            EXIT_NOT_FOUND, "not_found", f"job {cli.args.id} not found (or its record expired)"
        )
    view = render.job_view(job, show_pii=cli.show_pii)
    cli.emit(view, render.job_text(view))
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
