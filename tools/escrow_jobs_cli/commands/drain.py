"""``escrow-jobs drain``: run the due jobs once, with the real handlers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TextIO

from .. import render
from ..cli import EXIT_OK, Cli, parse_job_type


def cmd_drain(cli: Cli) -> int:
    from jobs_core import Processor, ProcessorConfig, default_handlers

    env = cli.env()
    types = [parse_job_type(t) for t in cli.args.type] if cli.args.type else None
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
        headers = ["ID", "TYPE", "ATTEMPT", "OUTCOME", "ERROR"]
        text = render.table(headers, rows, right={2}, width=cli.width, wrap={4})
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
